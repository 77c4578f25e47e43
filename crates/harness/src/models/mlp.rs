//! `mlp`: a multilayer perceptron for small images (Fashion-MNIST): the image flattened, two
//! hidden layers of 512 and 256 ReLU units (times `--width`), a linear head. Linear layers are
//! PyTorch-default initialised from the seed ([`Linear`]); the matrix products are Candle's
//! (gemm), there is no convolution to speed up.

use anyhow::Result;
use candle_core::{Device, Tensor};
use dynaprune_model::layers::Linear;
use dynaprune_model::{Mode, Network, Param};

use super::{BuildSpec, Inputs, ModelEntry};

/// Hidden widths at `--width 1`.
pub const HIDDEN: [usize; 2] = [512, 256];

/// The network.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    head: Linear,
    dims: Vec<usize>,
    params: Vec<Param>,
    device: Device,
}

impl Mlp {
    /// Builds the MLP for `spec`'s images and classes.
    pub fn new(spec: &BuildSpec) -> Result<Self> {
        let mut params = Vec::new();
        let mut dims = vec![spec.channels * spec.height * spec.width];
        let mut layers = Vec::new();
        for (i, &h) in HIDDEN.iter().enumerate() {
            let h = ((h as f64 * spec.width_multiplier).round() as usize).max(1);
            let cin = *dims.last().expect("non-empty");
            let name = format!("layers.{i}");
            layers.push(Linear::new(cin, h, spec.seed, &name, spec.dtype, &spec.device, &mut params)?);
            dims.push(h);
        }
        let cin = *dims.last().expect("non-empty");
        let head = Linear::new(cin, spec.classes, spec.seed, "head", spec.dtype, &spec.device, &mut params)?;
        dims.push(spec.classes);
        Ok(Self { layers, head, dims, params, device: spec.device.clone() })
    }
}

impl Network for Mlp {
    fn architecture(&self) -> &str {
        "mlp"
    }

    fn forward_with_features(&self, x: &Tensor, mode: Mode) -> dynaprune_model::Result<(Tensor, Tensor)> {
        let mut h = x.flatten_from(1)?;
        for l in &self.layers {
            h = l.forward(&h)?.relu()?;
        }
        self.head.head(h, mode)
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward_macs(&self, _h: usize, _w: usize) -> u64 {
        self.dims.windows(2).map(|d| (d[0] * d[1]) as u64).sum()
    }
}

/// The registry's entry.
#[rustfmt::skip]
pub const ENTRIES: &[ModelEntry] = &[
    ModelEntry { name: "mlp", help: "MLP, flattened image -> 512 -> 256 -> classes, ReLU", inputs: Inputs::ANY, build: |s| Ok(Box::new(Mlp::new(s)?)) },
];
