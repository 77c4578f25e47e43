//! SGD with momentum, Nesterov and weight decay, as a Candle [`Optimizer`] (Candle's own SGD has
//! no momentum).
//!
//! PyTorch's update (`torch.optim.SGD`, dampening 0):
//! `g = grad + wd * w` (if the parameter decays); `buf = momentum * buf + g` (`buf = g` on the
//! first step); `g = g + momentum * buf` if Nesterov else `buf`; `w = w - lr * g`.
//! Momentum buffers are detached so no graph accumulates across steps.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::Optimizer;

use crate::error::{ModelError, Result};
use crate::layers::Param;

/// SGD settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (changed every step by a schedule, see [`crate::LrSchedule`]).
    pub lr: f64,
    /// Momentum (0 disables it).
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
    /// Apply weight decay to biases and BatchNorm parameters too (default: no, as in the
    /// reference PyTorch script).
    pub decay_bias_and_norm: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5e-4, decay_bias_and_norm: false }
    }
}

#[derive(Debug)]
struct Slot {
    name: String,
    var: Var,
    decay: bool,
    buf: Option<Tensor>,
}

/// SGD with momentum, Nesterov and decoupled parameter groups.
#[derive(Debug)]
pub struct Sgd {
    slots: Vec<Slot>,
    config: SgdConfig,
}

impl Sgd {
    /// An optimizer over a model's named parameters; biases and normalisation parameters decay
    /// only if `config.decay_bias_and_norm`.
    pub fn from_params(params: &[Param], config: SgdConfig) -> Result<Self> {
        check(&config)?;
        let slots = params
            .iter()
            .map(|p| Slot {
                name: p.name.clone(),
                var: p.var.clone(),
                decay: config.decay_bias_and_norm || !p.kind.is_bias_or_norm(),
                buf: None,
            })
            .collect();
        Ok(Self { slots, config })
    }

    /// The settings.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Momentum buffers by parameter name (for checkpoints); parameters not stepped yet have none.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.slots.iter().filter_map(|s| s.buf.as_ref().map(|b| (format!("momentum.{}", s.name), b.clone()))).collect()
    }

    /// Restores a momentum buffer saved by [`Sgd::state`]; `false` if no parameter has that name.
    pub fn set_state(&mut self, name: &str, t: Tensor) -> Result<bool> {
        let Some(pname) = name.strip_prefix("momentum.") else { return Ok(false) };
        match self.slots.iter_mut().find(|s| s.name == pname) {
            Some(s) => {
                if s.var.dims() != t.dims() {
                    return Err(ModelError::Config(format!(
                        "momentum buffer {name} has shape {:?}, parameter {:?}",
                        t.dims(),
                        s.var.dims()
                    )));
                }
                s.buf = Some(t.detach());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn check(c: &SgdConfig) -> Result<()> {
    for (n, v) in [("lr", c.lr), ("momentum", c.momentum), ("weight_decay", c.weight_decay)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(ModelError::Config(format!("SGD {n} must be finite and non-negative, got {v}")));
        }
    }
    if c.nesterov && c.momentum == 0.0 {
        return Err(ModelError::Config("Nesterov momentum needs momentum > 0".into()));
    }
    Ok(())
}

impl Optimizer for Sgd {
    type Config = SgdConfig;

    /// Every variable decays except those of rank <= 1 (biases, BatchNorm) unless
    /// `decay_bias_and_norm`.
    fn new(vars: Vec<Var>, config: SgdConfig) -> candle_core::Result<Self> {
        check(&config).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let slots = vars
            .into_iter()
            .enumerate()
            .map(|(i, var)| Slot {
                name: format!("var{i}"),
                decay: config.decay_bias_and_norm || var.rank() > 1,
                var,
                buf: None,
            })
            .collect();
        Ok(Self { slots, config })
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        let c = self.config;
        for s in &mut self.slots {
            let Some(grad) = grads.get(&s.var) else { continue };
            let mut g = grad.detach();
            if s.decay && c.weight_decay != 0.0 {
                g = (g + (s.var.as_tensor() * c.weight_decay)?)?;
            }
            if c.momentum != 0.0 {
                let buf = match s.buf.take() {
                    None => g.clone(),
                    Some(b) => ((b * c.momentum)? + &g)?,
                }
                .detach();
                g = if c.nesterov { (g + (&buf * c.momentum)?)? } else { buf.clone() };
                s.buf = Some(buf);
            }
            s.var.set(&(s.var.as_tensor() - (g * c.lr)?)?.detach())?;
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}
