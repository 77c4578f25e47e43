//! ResNets for small images: the CIFAR ResNet-18 (as in the Data Diet and InfoBatch code) and
//! He et al.'s ResNet-8/14/20/32/56 family, layer for layer the networks of
//! `xtask/torch/torch_resnet_bench.py` (the PyTorch networks our
//! speed is compared with): a 3x3 stem conv + BN + ReLU (no max-pool), basic
//! blocks `relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))` with a 1x1 conv + BN shortcut where
//! the shape changes, global average pooling and a linear head.

use candle_core::{DType, Device, ModuleT, Tensor};

use crate::error::{ModelError, Result};
use crate::layers::{ConvBn, Kernels, Linear, Mode, Param};
use crate::network::Network;
use crate::ops;

/// The shape of a ResNet.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    /// A name for logs (`resnet8`, ...).
    pub name: String,
    /// Channels of each stage.
    pub widths: Vec<usize>,
    /// Basic blocks per stage.
    pub blocks: Vec<usize>,
    /// Stride of each stage's first block.
    pub strides: Vec<usize>,
    /// Input channels (1 for Fashion-MNIST, 3 for CIFAR).
    pub in_channels: usize,
    /// Output classes.
    pub classes: usize,
}

impl ResNetConfig {
    fn he(name: &str, n: usize, in_channels: usize, classes: usize) -> Self {
        Self {
            name: name.into(),
            widths: vec![16, 32, 64],
            blocks: vec![n; 3],
            strides: vec![1, 2, 2],
            in_channels,
            classes,
        }
    }
    /// ResNet-8: 16-32-64, one block per stage.
    pub fn resnet8(in_channels: usize, classes: usize) -> Self {
        Self::he("resnet8", 1, in_channels, classes)
    }
    /// ResNet-14: 16-32-64, two blocks per stage.
    pub fn resnet14(in_channels: usize, classes: usize) -> Self {
        Self::he("resnet14", 2, in_channels, classes)
    }
    /// ResNet-20: 16-32-64, three blocks per stage.
    pub fn resnet20(in_channels: usize, classes: usize) -> Self {
        Self::he("resnet20", 3, in_channels, classes)
    }
    /// ResNet-32: 16-32-64, five blocks per stage.
    pub fn resnet32(in_channels: usize, classes: usize) -> Self {
        Self::he("resnet32", 5, in_channels, classes)
    }
    /// ResNet-56: 16-32-64, nine blocks per stage.
    pub fn resnet56(in_channels: usize, classes: usize) -> Self {
        Self::he("resnet56", 9, in_channels, classes)
    }
    /// The CIFAR ResNet-18: 64-128-256-512, two blocks per stage, 3x3 stem, no max-pool.
    pub fn resnet18(in_channels: usize, classes: usize) -> Self {
        Self {
            name: "resnet18".into(),
            widths: vec![64, 128, 256, 512],
            blocks: vec![2; 4],
            strides: vec![1, 2, 2, 2],
            in_channels,
            classes,
        }
    }

    /// Names accepted by [`ResNetConfig::by_name`].
    pub const NAMES: [&'static str; 6] = ["resnet8", "resnet14", "resnet20", "resnet32", "resnet56", "resnet18"];

    /// A config by name.
    pub fn by_name(name: &str, in_channels: usize, classes: usize) -> Result<Self> {
        Ok(match name {
            "resnet8" => Self::resnet8(in_channels, classes),
            "resnet14" => Self::resnet14(in_channels, classes),
            "resnet20" => Self::resnet20(in_channels, classes),
            "resnet32" => Self::resnet32(in_channels, classes),
            "resnet56" => Self::resnet56(in_channels, classes),
            "resnet18" => Self::resnet18(in_channels, classes),
            other => {
                return Err(ModelError::Config(format!(
                    "unknown model `{other}`: expected one of {}",
                    Self::NAMES.join(", ")
                )))
            }
        })
    }

    /// Multiplies every stage width by `m` (rounded, at least 1).
    pub fn width_multiplier(mut self, m: f64) -> Result<Self> {
        if !(m.is_finite() && m > 0.0) {
            return Err(ModelError::Config(format!("width multiplier must be positive, got {m}")));
        }
        for w in &mut self.widths {
            *w = ((*w as f64 * m).round() as usize).max(1);
        }
        if (m - 1.0).abs() > 1e-12 {
            self.name = format!("{}x{m}", self.name);
        }
        Ok(self)
    }

    fn validate(&self) -> Result<()> {
        let n = self.widths.len();
        if n == 0 || self.blocks.len() != n || self.strides.len() != n {
            return Err(ModelError::Config("widths, blocks and strides must be non-empty and of equal length".into()));
        }
        if self.in_channels == 0 || self.classes == 0 || self.widths.contains(&0) || self.strides.contains(&0) {
            return Err(ModelError::Config(format!("zero channels, classes or strides in {self:?}")));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct BasicBlock {
    a: ConvBn,
    b: ConvBn,
    shortcut: Option<ConvBn>,
}

impl BasicBlock {
    fn forward(&self, x: &Tensor, mode: Mode, k: Kernels) -> Result<Tensor> {
        if let (Kernels::Direct(isa), Mode::Eval) = (k, mode) {
            // The BatchNorm, the join and the ReLU in the second convolution's epilogue (see
            // `ops::direct::fused`): the same arithmetic as below, in fewer passes. (Training
            // runs the whole trunk as one op: `ResNet::trunk_train`.)
            let h = self.a.forward(x, mode, true, k)?;
            return self.b.eval_join(&h, &self.shortcut(x, mode, k)?, isa);
        }
        let h = self.a.forward(x, mode, true, k)?;
        let h = self.b.forward(&h, mode, false, k)?;
        let s = self.shortcut(x, mode, k)?;
        Ok(match k {
            Kernels::Fast | Kernels::FastBf16 | Kernels::Direct(_) => ops::add_relu(&h, &s)?,
            Kernels::Candle | Kernels::CandleBf16 => (h + s)?.relu()?,
        })
    }

    fn shortcut(&self, x: &Tensor, mode: Mode, k: Kernels) -> Result<Tensor> {
        Ok(match &self.shortcut {
            Some(sc) => sc.forward(x, mode, false, k)?,
            None => x.clone(),
        })
    }
}

/// A ResNet with seeded initial weights.
#[derive(Debug)]
pub struct ResNet {
    config: ResNetConfig,
    stem: ConvBn,
    blocks: Vec<BasicBlock>,
    head: Linear,
    params: Vec<Param>,
    kernels: Kernels,
    device: Device,
}

impl ResNet {
    /// Builds the network on `device` with weights drawn from `seed` (same seed, same weights,
    /// on every run and machine), f32, using `kernels`.
    pub fn new(config: ResNetConfig, seed: u64, device: &Device, kernels: Kernels) -> Result<Self> {
        Self::with_dtype(config, seed, DType::F32, device, kernels)
    }

    /// Like [`ResNet::new`] with an explicit dtype (f64 is for gradient checks).
    pub fn with_dtype(
        config: ResNetConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
        kernels: Kernels,
    ) -> Result<Self> {
        config.validate()?;
        if kernels.is_fast() && !device.is_cpu() {
            return Err(ModelError::Config(
                "Kernels::Fast runs on the CPU only; use Kernels::Candle (Kernels::for_device) on a GPU".into(),
            ));
        }
        let mut params = Vec::new();
        let w0 = config.widths[0];
        let stem = ConvBn::new(config.in_channels, w0, 3, 1, seed, "stem", dtype, device, &mut params)?;
        let mut blocks = Vec::new();
        let mut cin = w0;
        for (s, ((&w, &n), &stride)) in config.widths.iter().zip(&config.blocks).zip(&config.strides).enumerate() {
            for i in 0..n {
                let st = if i == 0 { stride } else { 1 };
                let name = format!("layers.{s}.{i}");
                let a = ConvBn::new(cin, w, 3, st, seed, &format!("{name}.a"), dtype, device, &mut params)?;
                let b = ConvBn::new(w, w, 3, 1, seed, &format!("{name}.b"), dtype, device, &mut params)?;
                let shortcut = if st != 1 || cin != w {
                    Some(ConvBn::new(cin, w, 1, st, seed, &format!("{name}.shortcut"), dtype, device, &mut params)?)
                } else {
                    None
                };
                blocks.push(BasicBlock { a, b, shortcut });
                cin = w;
            }
        }
        let head = Linear::new(cin, config.classes, seed, "head", dtype, device, &mut params)?;
        Ok(Self { config, stem, blocks, head, params, kernels, device: device.clone() })
    }

    /// The configuration.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }
    /// The kernels in use.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Training on the direct kernels: the stem and every block as one op
    /// ([`ops::direct::resnet_trunk_train_nhwc`]), `x` NHWC; the same arithmetic as the stem and
    /// blocks one by one. Updates every unit's running statistics.
    fn trunk_train(&self, x: &Tensor, isa: ops::direct::Isa) -> Result<Tensor> {
        let blocks: Vec<ops::direct::TrunkBlock> = self
            .blocks
            .iter()
            .map(|b| ops::direct::TrunkBlock {
                a: b.a.block_unit(),
                b: b.b.block_unit(),
                shortcut: b.shortcut.as_ref().map(ConvBn::block_unit),
            })
            .collect();
        let (y, stats) = ops::direct::resnet_trunk_train_nhwc(x, self.stem.block_unit(), &blocks, isa)?;
        // The statistics come in the trunk's unit order (stem, then a, b, shortcut per block),
        // each over its output's pixels.
        let (n, mut h, mut w) = (x.dim(0)?, x.dim(1)?, x.dim(2)?);
        let mut stats = stats.iter();
        let mut next = || stats.next().expect("one statistics handle per unit");
        let (_, h1, w1) = self.stem.macs(h, w);
        self.stem.record_batch(next(), n * h1 * w1, x)?;
        (h, w) = (h1, w1);
        for b in &self.blocks {
            let (_, ha, wa) = b.a.macs(h, w);
            for unit in [Some(&b.a), Some(&b.b), b.shortcut.as_ref()].into_iter().flatten() {
                unit.record_batch(next(), n * ha * wa, x)?;
            }
            (h, w) = (ha, wa);
        }
        Ok(y)
    }

    /// Whether evaluation on the direct kernels runs the trunk image by image
    /// ([`ops::direct::resnet_trunk_eval_nhwc`]): when all kernels together fit
    /// [`ops::direct::DEPTH_FIRST_WEIGHT_BYTES`]. Either way gives the same bits.
    fn depth_first_eval(&self) -> bool {
        let bytes: usize = self
            .units()
            .iter()
            .map(|u| {
                let w = u.block_unit().weight;
                w.elem_count() * w.dtype().size_in_bytes()
            })
            .sum();
        bytes <= ops::direct::DEPTH_FIRST_WEIGHT_BYTES
    }

    /// Evaluation on the direct kernels, each image through the whole trunk in turn, `x` NHWC.
    fn trunk_eval(&self, x: &Tensor, isa: ops::direct::Isa) -> Result<Tensor> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                Ok(ops::direct::EvalBlock {
                    a: b.a.eval_unit()?,
                    b: b.b.eval_unit()?,
                    shortcut: b.shortcut.as_ref().map(ConvBn::eval_unit).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ops::direct::resnet_trunk_eval_nhwc(x, &self.stem.eval_unit()?, &blocks, isa)?)
    }

    fn units(&self) -> Vec<&ConvBn> {
        let mut v = vec![&self.stem];
        for b in &self.blocks {
            v.push(&b.a);
            v.push(&b.b);
            if let Some(s) = &b.shortcut {
                v.push(s);
            }
        }
        v
    }
}

impl Network for ResNet {
    fn architecture(&self) -> &str {
        &self.config.name
    }

    /// `(pooled features (N, width), logits (N, classes))`.
    fn forward_with_features(&self, x: &Tensor, mode: Mode) -> Result<(Tensor, Tensor)> {
        let k = self.kernels;
        // The direct kernels run on NHWC: converted once here, pooled over (H, W) at the end.
        let (x, spatial) = if k.nhwc() { (x.permute((0, 2, 3, 1))?.contiguous()?, (1, 2)) } else { (x.clone(), (2, 3)) };
        let h = match (k, mode) {
            (Kernels::Direct(isa), Mode::Train) => self.trunk_train(&x, isa)?,
            (Kernels::Direct(isa), Mode::Eval) if self.depth_first_eval() => self.trunk_eval(&x, isa)?,
            _ => {
                let mut h = self.stem.forward(&x, mode, true, k)?;
                for b in &self.blocks {
                    h = b.forward(&h, mode, k)?;
                }
                h
            }
        };
        let pooled = if k.nhwc() && h.device().is_cpu() { ops::direct::mean_pixels_nhwc(&h)? } else { h.mean(spatial)? };
        self.head.head(pooled, mode)
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn device(&self) -> &Device {
        &self.device
    }

    /// BatchNorm running statistics, by checkpoint name.
    fn buffers(&self) -> Vec<(String, Tensor)> {
        self.units().into_iter().flat_map(ConvBn::buffers).collect()
    }

    fn set_buffer(&self, name: &str, t: Tensor) -> bool {
        self.units().into_iter().any(|u| u.set_buffer(name, t.clone()))
    }

    /// Convolutions and the head; BatchNorm, ReLU and pooling are O(activations) and left out.
    /// Training costs about 3x this (forward, input gradient, weight gradient), minus the stem's
    /// input gradient.
    fn forward_macs(&self, h: usize, w: usize) -> u64 {
        let (mut total, mut hh, mut ww) = (0u64, h, w);
        let (m, h1, w1) = self.stem.macs(hh, ww);
        total += m;
        (hh, ww) = (h1, w1);
        for b in &self.blocks {
            let (ma, ha, wa) = b.a.macs(hh, ww);
            let (mb, _, _) = b.b.macs(ha, wa);
            let ms = b.shortcut.as_ref().map_or(0, |s| s.macs(hh, ww).0);
            total += ma + mb + ms;
            (hh, ww) = (ha, wa);
        }
        let last = *self.config.widths.last().expect("validated");
        total + (last * self.config.classes) as u64
    }

    /// Without the stem's input gradient (nothing upstream needs it).
    fn train_flops(&self, h: usize, w: usize) -> u64 {
        let fwd = self.forward_macs(h, w);
        let (stem, _, _) = self.stem.macs(h, w);
        2 * (3 * fwd - stem)
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward(xs, train).map_err(|e| match e {
            ModelError::Candle(c) => c,
            other => candle_core::Error::Msg(other.to_string()),
        })
    }
}
