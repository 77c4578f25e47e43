//! `vgg11`: VGG-11 with BatchNorm and the usual CIFAR head (Simonyan and Zisserman, 2015; the
//! CIFAR variant of pytorch-cifar and of the data-pruning literature): eight 3x3 convolutions
//! with BatchNorm and ReLU, `64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M` (M = 2x2
//! max-pool, stride 2), then one linear layer from the 512 pooled features to the classes.
//!
//! Convolution + BatchNorm + ReLU run on our fast CPU ops ([`ConvBn`], [`Kernels::Fast`]);
//! max-pooling is Candle's (`max_pool2d`, forward and backward). A pool is skipped once the map
//! is 1x1, so 28x28 inputs (Fashion-MNIST) work too (28, 14, 7, 3, 1, 1); the features are
//! averaged over whatever map remains (1x1 for 32x32 inputs). With the direct kernels
//! (NHWC activations) the input is converted once and each max-pool reads NHWC through a
//! transposed view (Candle's pool is NCHW-only), writing NHWC back.
//!
//! [`Kernels::Fast`]: dynaprune_model::Kernels::Fast

use anyhow::Result;
use candle_core::{Device, Tensor};
use dynaprune_model::layers::{ConvBn, Linear};
use dynaprune_model::{Mode, Network, Param};

use super::{BuildSpec, Inputs, ModelEntry};

/// VGG-11's layers: a number is a 3x3 conv + BN + ReLU with that many channels, 0 a max-pool.
pub const CONFIG: [usize; 13] = [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];

#[derive(Debug)]
enum Layer {
    Conv(ConvBn),
    Pool,
}

/// The network.
#[derive(Debug)]
pub struct Vgg {
    layers: Vec<Layer>,
    head: Linear,
    params: Vec<Param>,
    kernels: dynaprune_model::Kernels,
    device: Device,
    last_width: usize,
    classes: usize,
}

impl Vgg {
    /// Builds VGG-11 for `spec`'s images and classes.
    pub fn new(spec: &BuildSpec) -> Result<Self> {
        let mut params = Vec::new();
        let mut layers = Vec::new();
        let mut cin = spec.channels;
        for (i, &c) in CONFIG.iter().enumerate() {
            if c == 0 {
                layers.push(Layer::Pool);
                continue;
            }
            let c = ((c as f64 * spec.width_multiplier).round() as usize).max(1);
            let name = format!("features.{i}");
            layers.push(Layer::Conv(ConvBn::new(
                cin,
                c,
                3,
                1,
                spec.seed,
                &name,
                spec.dtype,
                &spec.device,
                &mut params,
            )?));
            cin = c;
        }
        let head = Linear::new(cin, spec.classes, spec.seed, "head", spec.dtype, &spec.device, &mut params)?;
        Ok(Self {
            layers,
            head,
            params,
            kernels: spec.kernels,
            device: spec.device.clone(),
            last_width: cin,
            classes: spec.classes,
        })
    }

    fn units(&self) -> impl Iterator<Item = &ConvBn> {
        self.layers.iter().filter_map(|l| match l {
            Layer::Conv(c) => Some(c),
            Layer::Pool => None,
        })
    }
}

impl Network for Vgg {
    fn architecture(&self) -> &str {
        "vgg11"
    }

    fn forward_with_features(&self, x: &Tensor, mode: Mode) -> dynaprune_model::Result<(Tensor, Tensor)> {
        let nhwc = self.kernels.nhwc();
        // (height, width) dimensions of the activations.
        let (hd, wd) = if nhwc { (1, 2) } else { (2, 3) };
        let mut h = if nhwc { x.permute((0, 2, 3, 1))?.contiguous()? } else { x.clone() };
        for l in &self.layers {
            h = match l {
                Layer::Conv(c) => c.forward(&h, mode, true, self.kernels)?,
                Layer::Pool if h.dim(hd)? >= 2 && h.dim(wd)? >= 2 && nhwc => {
                    h.permute((0, 3, 1, 2))?.max_pool2d(2)?.permute((0, 2, 3, 1))?.contiguous()?
                }
                Layer::Pool if h.dim(hd)? >= 2 && h.dim(wd)? >= 2 => h.max_pool2d(2)?,
                Layer::Pool => h,
            };
        }
        self.head.head(h.mean((hd, wd))?, mode)
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        self.units().flat_map(ConvBn::buffers).collect()
    }

    fn set_buffer(&self, name: &str, t: Tensor) -> bool {
        self.units().any(|u| u.set_buffer(name, t.clone()))
    }

    fn forward_macs(&self, h: usize, w: usize) -> u64 {
        let (mut total, mut hh, mut ww) = (0u64, h, w);
        for l in &self.layers {
            match l {
                Layer::Conv(c) => {
                    let (m, h1, w1) = c.macs(hh, ww);
                    total += m;
                    (hh, ww) = (h1, w1);
                }
                Layer::Pool if hh >= 2 && ww >= 2 => (hh, ww) = (hh / 2, ww / 2),
                Layer::Pool => {}
            }
        }
        total + (self.last_width * self.classes) as u64
    }
}

/// The registry's entry.
#[rustfmt::skip]
pub const ENTRIES: &[ModelEntry] = &[
    ModelEntry { name: "vgg11", help: "VGG-11 with BatchNorm and max-pooling, CIFAR head (512 -> classes)", inputs: Inputs::ANY, build: |s| Ok(Box::new(Vgg::new(s)?)) },
];
