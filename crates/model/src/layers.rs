//! Layers: convolution, BatchNorm and linear, each able to run on our fast CPU ops or on Candle's
//! own ops (any device).

use std::sync::Mutex;

use candle_core::{DType, Device, Tensor, Var, D};

use crate::error::Result;
use crate::init;
use crate::ops::direct::{self, Isa};
use crate::ops::{self, Precision};

/// Which implementation the layers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernels {
    /// Our custom CPU ops (im2col + GEMM convolution, fused BatchNorm + ReLU, fused residual
    /// join). CPU only.
    Fast,
    /// [`Kernels::Fast`] with the convolutions' matrix products in bf16 (AVX512_BF16 dot
    /// products, f32 accumulation; see [`Precision::Bf16`]): weights, activations, BatchNorm,
    /// the loss and the optimiser stay f32. CPU only, and only on CPUs with AVX512_BF16.
    FastBf16,
    /// Direct convolutions on NHWC activations with BatchNorm fused (statistics in the
    /// convolution's epilogue, the BatchNorm gradient in its backward's prologue), f32, on the
    /// given instruction set ([`Isa`]; its results are bit-identical to the others'). The network
    /// converts its input to NHWC once; every layer in between stays NHWC. CPU only.
    Direct(Isa),
    /// Candle's stock ops (conv2d, BatchNorm composed of elementwise ops): any device, and the
    /// reference our ops are tested and benchmarked against.
    Candle,
    /// [`Kernels::Candle`] with each convolution run in bf16 (input and kernel cast to bf16,
    /// output cast back to f32; the casts are differentiable, so gradients and the master
    /// weights stay f32): mixed precision on a GPU (it cannot run on the CPU: Candle's CPU backend
    /// has no bf16 matmul).
    CandleBf16,
}

impl Kernels {
    /// The right choice for a device: [`Kernels::Fast`] on CPU (faster than Candle's conv on
    /// every layer shape we benchmark: `cargo xtask bench-train`), [`Kernels::Candle`] elsewhere
    /// (our ops have no GPU kernels).
    pub fn for_device(device: &Device) -> Self {
        if device.is_cpu() {
            Kernels::Fast
        } else {
            Kernels::Candle
        }
    }

    /// Our CPU ops (im2col in either precision, or direct)?
    pub fn is_fast(self) -> bool {
        matches!(self, Kernels::Fast | Kernels::FastBf16 | Kernels::Direct(_))
    }

    /// The direct kernels on the fastest instruction set this CPU has.
    pub fn direct() -> Self {
        Kernels::Direct(Isa::best())
    }

    /// The names [`Kernels::from_name`] accepts.
    pub const NAMES: [&'static str; 8] =
        ["im2col", "im2col-bf16", "direct", "direct-avx512", "direct-avx2", "direct-portable", "candle", "candle-bf16"];

    /// Kernels by name (`fast` and `fast-bf16` are accepted for `im2col` and `im2col-bf16`):
    /// `direct` is the direct kernels on this CPU's fastest instruction set, `direct-<isa>` forces
    /// one, refused (naming the CPU's features) where this CPU cannot run it, as is `im2col-bf16`
    /// without AVX512_BF16.
    pub fn from_name(name: &str) -> Result<Self> {
        let k = match name {
            "im2col" | "fast" => Kernels::Fast,
            "im2col-bf16" | "fast-bf16" => Kernels::FastBf16,
            "direct" => Kernels::direct(),
            "direct-avx512" => Kernels::Direct(Isa::Avx512),
            "direct-avx2" => Kernels::Direct(Isa::Avx2),
            "direct-portable" => Kernels::Direct(Isa::Portable),
            "candle" => Kernels::Candle,
            "candle-bf16" => Kernels::CandleBf16,
            other => {
                return Err(crate::ModelError::Config(format!(
                    "unknown kernels `{other}`: expected one of {}",
                    Self::NAMES.join(", ")
                )))
            }
        };
        if k.is_fast() {
            k.with_precision(k.precision())?;
        }
        Ok(k)
    }

    /// The name [`Kernels::from_name`] reads back (`direct` resolved to its instruction set).
    pub fn name(self) -> String {
        match self {
            Kernels::Fast => "im2col".into(),
            Kernels::FastBf16 => "im2col-bf16".into(),
            Kernels::Direct(isa) => format!("direct-{}", isa.name()),
            Kernels::Candle => "candle".into(),
            Kernels::CandleBf16 => "candle-bf16".into(),
        }
    }

    /// Whether activations are NHWC (the direct kernels) rather than NCHW.
    pub fn nhwc(self) -> bool {
        matches!(self, Kernels::Direct(_))
    }

    /// The precision of the convolutions.
    pub fn precision(self) -> Precision {
        match self {
            Kernels::Fast | Kernels::Candle | Kernels::Direct(_) => Precision::F32,
            Kernels::FastBf16 | Kernels::CandleBf16 => Precision::Bf16,
        }
    }

    /// The same kernels in `precision`. Bf16 with our CPU ops on a CPU without AVX512_BF16 is
    /// an error (never a silent fallback to f32).
    pub fn with_precision(self, precision: Precision) -> Result<Self> {
        if let Kernels::Direct(isa) = self {
            if precision == Precision::Bf16 {
                return Err(crate::ModelError::Config(
                    "the direct kernels are f32 only: bf16 convolutions run on the im2col path".into(),
                ));
            }
            direct::check_isa(isa)?;
            return Ok(self);
        }
        let k = match (self.is_fast(), precision) {
            (true, Precision::F32) => Kernels::Fast,
            (true, Precision::Bf16) => Kernels::FastBf16,
            (false, Precision::F32) => Kernels::Candle,
            (false, Precision::Bf16) => Kernels::CandleBf16,
        };
        if k == Kernels::FastBf16 {
            ops::check_precision(precision)?;
        }
        Ok(k)
    }
}

/// Candle's convolution, in bf16 for [`Kernels::CandleBf16`].
fn candle_conv(x: &Tensor, w: &Tensor, padding: usize, stride: usize, kernels: Kernels) -> Result<Tensor> {
    if kernels.precision() == Precision::Bf16 {
        let z = x.to_dtype(DType::BF16)?.conv2d(&w.to_dtype(DType::BF16)?, padding, stride, 1, 1)?;
        return Ok(z.to_dtype(x.dtype())?);
    }
    Ok(x.conv2d(w, padding, stride, 1, 1)?)
}

/// How a network is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Training: BatchNorm uses batch statistics and updates its running statistics.
    Train,
    /// Inference: BatchNorm uses running statistics; no gradient flows (fastest).
    Eval,
    /// Inference semantics, but differentiable with respect to inputs and parameters (e.g. for
    /// per-sample gradient norms at initialisation).
    EvalWithGrad,
}

/// What a parameter is, for weight-decay grouping and checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// A convolution kernel.
    ConvWeight,
    /// A linear layer's weight matrix.
    LinearWeight,
    /// A linear layer's bias.
    LinearBias,
    /// BatchNorm scale and shift, packed as `(2, C)` = `[gamma; beta]`.
    NormAffine,
}

impl ParamKind {
    /// `true` for biases and normalisation parameters (commonly excluded from weight decay).
    pub fn is_bias_or_norm(self) -> bool {
        matches!(self, ParamKind::LinearBias | ParamKind::NormAffine)
    }
}

/// A named trainable parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dotted name, e.g. `layers.0.0.a.conv.weight`.
    pub name: String,
    /// The variable.
    pub var: Var,
    /// What it is.
    pub kind: ParamKind,
}

/// A bias-free convolution followed by BatchNorm (PyTorch semantics: momentum 0.1, eps 1e-5,
/// running variance updated with the unbiased batch variance) and an optional ReLU: the unit
/// every layer of our ResNets is made of.
#[derive(Debug)]
pub struct ConvBn {
    weight: Var,
    affine: Var,
    stride: usize,
    padding: usize,
    running_mean: Mutex<Tensor>,
    running_var: Mutex<Tensor>,
    momentum: f64,
    eps: f64,
    name: String,
}

impl ConvBn {
    /// A Kaiming-initialised `cout x cin x k x k` kernel with padding `k / 2`, `gamma = 1`,
    /// `beta = 0`, running mean 0 and variance 1. Registers its parameters in `params`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        seed: u64,
        name: &str,
        dtype: DType,
        device: &Device,
        params: &mut Vec<Param>,
    ) -> Result<Self> {
        let wname = format!("{name}.conv.weight");
        let weight = Var::from_tensor(&init::kaiming_normal_fan_out(&[cout, cin, k, k], seed, &wname, dtype, device)?)?;
        let affine = Var::from_tensor(&Tensor::cat(
            &[Tensor::ones((1, cout), dtype, device)?, Tensor::zeros((1, cout), dtype, device)?],
            0,
        )?)?;
        params.push(Param { name: wname, var: weight.clone(), kind: ParamKind::ConvWeight });
        params.push(Param { name: format!("{name}.bn.affine"), var: affine.clone(), kind: ParamKind::NormAffine });
        Ok(Self {
            weight,
            affine,
            stride,
            padding: k / 2,
            running_mean: Mutex::new(Tensor::zeros(cout, dtype, device)?),
            running_var: Mutex::new(Tensor::ones(cout, dtype, device)?),
            momentum: 0.1,
            eps: 1e-5,
            name: format!("{name}.bn"),
        })
    }

    /// `relu?(bn(conv(x)))`. In training mode BatchNorm uses (and records into its running
    /// statistics) the batch statistics; in eval mode the running statistics. `x` is NCHW, or
    /// NHWC for [`Kernels::Direct`] (the output follows the input's layout).
    pub fn forward(&self, x: &Tensor, mode: Mode, relu: bool, kernels: Kernels) -> Result<Tensor> {
        let c = self.affine.dim(1)?;
        if mode == Mode::Train {
            match kernels {
                Kernels::Fast | Kernels::FastBf16 | Kernels::Direct(_) => {
                    let (w, a, (s, p, eps)) = (&self.weight, &self.affine, (self.stride, self.padding, self.eps));
                    let (y, stats) = match kernels {
                        Kernels::Direct(isa) => direct::conv_bn_train_nhwc(x, w, a, s, p, eps, relu, isa)?,
                        _ => ops::conv_bn_train(x, w, a, s, p, eps, relu, kernels.precision())?,
                    };
                    self.record_batch(&stats, y.elem_count() / c, x)?;
                    Ok(y)
                }
                Kernels::Candle | Kernels::CandleBf16 => {
                    let z = candle_conv(x, &self.weight, self.padding, self.stride, kernels)?;
                    let m = z.elem_count() / c;
                    let zt = z.transpose(0, 1)?.flatten_from(1)?;
                    let mean = zt.mean_keepdim(D::Minus1)?;
                    let centred = zt.broadcast_sub(&mean)?;
                    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                    let norm = centred.broadcast_div(&(&var + self.eps)?.sqrt()?)?;
                    let gamma = self.affine.get(0)?.reshape((c, 1))?;
                    let beta = self.affine.get(1)?.reshape((c, 1))?;
                    let y = norm.broadcast_mul(&gamma)?.broadcast_add(&beta)?;
                    let mut dims = z.dims().to_vec();
                    dims.swap(0, 1);
                    let y = y.reshape(dims)?.transpose(0, 1)?.contiguous()?;
                    let y = if relu { y.relu()? } else { y };
                    self.update_running(mean.flatten_all()?.detach(), var.flatten_all()?.detach(), m)?;
                    Ok(y)
                }
            }
        } else {
            let (scale, shift) = self.eval_affine(mode)?;
            match kernels {
                Kernels::Fast | Kernels::FastBf16 if mode == Mode::EvalWithGrad => {
                    let z = ops::conv2d_with(x, &self.weight, self.stride, self.padding, kernels.precision())?;
                    let shape = (1, c, 1, 1);
                    let y = z.broadcast_mul(&scale.reshape(shape)?)?.broadcast_add(&shift.reshape(shape)?)?;
                    Ok(if relu { y.relu()? } else { y })
                }
                Kernels::Fast | Kernels::FastBf16 => {
                    let (x, w) = (x.detach(), self.weight.as_tensor().detach());
                    let z = ops::conv2d_with(&x, &w, self.stride, self.padding, kernels.precision())?;
                    Ok(ops::channel_affine(&z, &scale, &shift, relu)?)
                }
                Kernels::Direct(isa) if mode == Mode::EvalWithGrad => {
                    let z = direct::conv2d_nhwc(x, &self.weight, self.stride, self.padding, isa)?;
                    let shape = (1, 1, 1, c);
                    let y = z.broadcast_mul(&scale.reshape(shape)?)?.broadcast_add(&shift.reshape(shape)?)?;
                    Ok(if relu { y.relu()? } else { y })
                }
                Kernels::Direct(isa) => self.eval_direct(x, (&scale, &shift), relu, None, isa),
                Kernels::Candle | Kernels::CandleBf16 => {
                    let z = candle_conv(x, &self.weight, self.padding, self.stride, kernels)?;
                    let shape = (1, c, 1, 1);
                    let y = z.broadcast_mul(&scale.reshape(shape)?)?.broadcast_add(&shift.reshape(shape)?)?;
                    Ok(if relu { y.relu()? } else { y })
                }
            }
        }
    }

    /// Folds a batch's `(mean, biased variance)` over `m` values per channel into the running
    /// statistics (momentum, unbiased variance: PyTorch's update).
    fn update_running(&self, mean: Tensor, var: Tensor, m: usize) -> Result<()> {
        let unbiased = (var * (m as f64 / (m.max(2) - 1) as f64))?;
        let mo = self.momentum;
        let mut rm = self.running_mean.lock().expect("running mean lock");
        *rm = ((&*rm * (1.0 - mo))? + (mean * mo)?)?.detach();
        let mut rv = self.running_var.lock().expect("running var lock");
        *rv = ((&*rv * (1.0 - mo))? + (unbiased * mo)?)?.detach();
        Ok(())
    }

    /// The evaluation-mode BatchNorm as `(scale, shift)` per channel, from the running statistics
    /// (differentiable in the affine only in [`Mode::EvalWithGrad`]).
    fn eval_affine(&self, mode: Mode) -> Result<(Tensor, Tensor)> {
        let rm = self.running_mean.lock().expect("running mean lock").clone();
        let rv = self.running_var.lock().expect("running var lock").clone();
        let affine =
            if mode == Mode::Eval { self.affine.as_tensor().detach() } else { self.affine.as_tensor().clone() };
        let scale = affine.get(0)?.div(&(rv + self.eps)?.sqrt()?)?;
        let shift = (affine.get(1)? - rm.mul(&scale)?)?;
        Ok((scale, shift))
    }

    /// This unit as the direct kernels' evaluation trunk takes it: the kernel and the
    /// running-statistics affine.
    pub(crate) fn eval_unit(&self) -> Result<direct::EvalUnit<'_>> {
        let (scale, shift) = self.eval_affine(Mode::Eval)?;
        Ok(direct::EvalUnit { weight: self.weight.as_tensor(), scale, shift, stride: self.stride, padding: self.padding })
    }

    /// This unit as the direct kernels' fused ops take it.
    pub(crate) fn block_unit(&self) -> direct::BlockUnit<'_> {
        direct::BlockUnit {
            weight: self.weight.as_tensor(),
            affine: self.affine.as_tensor(),
            stride: self.stride,
            padding: self.padding,
            eps: self.eps,
        }
    }

    /// Folds the batch statistics one of our ops took for this unit, over `m` values per channel,
    /// into the running statistics, in `like`'s dtype and device.
    pub(crate) fn record_batch(&self, stats: &ops::BatchStatsHandle, m: usize, like: &Tensor) -> Result<()> {
        let (mean, var) = stats.get().expect("the forward pass records statistics");
        let c = mean.len();
        let to = |v: &[f64]| Tensor::from_slice(v, c, &Device::Cpu)?.to_dtype(like.dtype())?.to_device(like.device());
        self.update_running(to(&mean)?, to(&var)?, m)
    }

    /// Evaluation on the direct kernels: `relu(bn(conv(x)) + residual)` with the BatchNorm, the
    /// join and the ReLU in the convolution's epilogue.
    pub(crate) fn eval_join(&self, x: &Tensor, residual: &Tensor, isa: Isa) -> Result<Tensor> {
        let (scale, shift) = self.eval_affine(Mode::Eval)?;
        self.eval_direct(x, (&scale, &shift), true, Some(residual), isa)
    }

    /// `relu?(conv(x) * scale + shift (+ residual))` on the direct kernels, not differentiable.
    fn eval_direct(
        &self,
        x: &Tensor,
        (scale, shift): (&Tensor, &Tensor),
        relu: bool,
        residual: Option<&Tensor>,
        isa: Isa,
    ) -> Result<Tensor> {
        let (x, w) = (x.detach(), self.weight.as_tensor().detach());
        let (s, p) = (self.stride, self.padding);
        Ok(direct::conv_affine_nhwc(&x, &w, scale, shift, s, p, relu, residual, isa)?)
    }

    /// Forward multiply-accumulates per image for an `h x w` input, and the output size.
    pub fn macs(&self, h: usize, w: usize) -> (u64, usize, usize) {
        let d = self.weight.dims();
        let ho = (h + 2 * self.padding - d[2]) / self.stride + 1;
        let wo = (w + 2 * self.padding - d[3]) / self.stride + 1;
        ((d[0] * d[1] * d[2] * d[3] * ho * wo) as u64, ho, wo)
    }

    /// `(name, tensor)` of the running mean and variance, for checkpoints.
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        vec![
            (format!("{}.running_mean", self.name), self.running_mean.lock().expect("lock").clone()),
            (format!("{}.running_var", self.name), self.running_var.lock().expect("lock").clone()),
        ]
    }

    /// Restores a running statistic by its checkpoint name; `false` if the name is not ours.
    pub fn set_buffer(&self, name: &str, t: Tensor) -> bool {
        if name == format!("{}.running_mean", self.name) {
            *self.running_mean.lock().expect("lock") = t;
            true
        } else if name == format!("{}.running_var", self.name) {
            *self.running_var.lock().expect("lock") = t;
            true
        } else {
            false
        }
    }
}

/// A fully connected layer with bias.
#[derive(Debug)]
pub struct Linear {
    weight: Var,
    bias: Var,
}

impl Linear {
    /// PyTorch-default-initialised `out x in` layer.
    pub fn new(
        cin: usize,
        cout: usize,
        seed: u64,
        name: &str,
        dtype: DType,
        device: &Device,
        params: &mut Vec<Param>,
    ) -> Result<Self> {
        let (wn, bn) = (format!("{name}.weight"), format!("{name}.bias"));
        let weight = Var::from_tensor(&init::uniform_fan_in(&[cout, cin], cin, seed, &wn, dtype, device)?)?;
        let bias = Var::from_tensor(&init::uniform_fan_in(&[cout], cin, seed, &bn, dtype, device)?)?;
        params.push(Param { name: wn, var: weight.clone(), kind: ParamKind::LinearWeight });
        params.push(Param { name: bn, var: bias.clone(), kind: ParamKind::LinearBias });
        Ok(Self { weight, bias })
    }

    /// `x W^T + b`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?)
    }

    /// A classifier head's `(features, logits)` for [`crate::Network::forward_with_features`]:
    /// the layer's input and output, both detached from the graph in [`Mode::Eval`].
    pub fn head(&self, features: Tensor, mode: Mode) -> Result<(Tensor, Tensor)> {
        let logits = self.forward(&features)?;
        Ok(if mode == Mode::Eval { (features.detach(), logits.detach()) } else { (features, logits) })
    }
}
