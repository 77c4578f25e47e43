//! # dynaprune-model — small-image ResNets in Candle that train correctly, and fast on CPU
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use candle_nn::Optimizer;
//! use dynaprune_model::{loss, Kernels, Network, ResNet, ResNetConfig, Sgd, SgdConfig};
//!
//! # fn main() -> dynaprune_model::Result<()> {
//! let device = Device::Cpu;
//! let model = ResNet::new(ResNetConfig::resnet8(1, 10), 42, &device, Kernels::for_device(&device))?;
//! let mut sgd = Sgd::from_params(model.params(), SgdConfig { lr: 0.05, ..SgdConfig::default() })?;
//! let x = Tensor::zeros((4, 1, 28, 28), candle_core::DType::F32, &device)?;
//! let y = Tensor::new(&[3u32, 1, 4, 1], &device)?;
//! let logits = model.forward(&x, true)?;
//! let per_sample = loss::cross_entropy_per_sample(&logits, &y, 0.0)?; // (N,): feed to the pruner
//! let loss = loss::weighted_mean(&per_sample, None)?;
//! sgd.backward_step(&loss)?;
//! # Ok(()) }
//! ```
//!
//! ## Map
//! - [`network`]: the [`Network`] trait, everything the harness needs from a network (forward in
//!   three modes, features, parameters, buffers, device, work per image).
//! - [`resnet`]: [`ResNetConfig`] (ResNet-8/14/20/32/56, CIFAR ResNet-18, width multiplier,
//!   1 or 3 input channels) and [`ResNet`].
//! - [`layers`]: convolution, BatchNorm (running statistics, train/eval), linear; [`Kernels`]
//!   selects our fast CPU ops or Candle's own, each in f32 or with bf16 convolutions
//!   ([`Precision`]; on the CPU via our AVX512_BF16 GEMM, refused on CPUs without it).
//! - [`ops`]: the custom CPU ops (conv2d as im2col + GEMM in f32 or bf16, fused BatchNorm +
//!   ReLU, fused residual join) with their backward passes.
//! - [`loss`]: per-sample cross-entropy (label smoothing), weighted mean, EL2N, correctness.
//! - [`optim`]: [`Sgd`] with momentum, Nesterov and weight decay (bias/norm exclusion).
//! - [`schedule`]: learning-rate schedules keyed on training progress.
//! - [`init`]: seeded Kaiming/uniform initialisation (Candle's CPU RNG cannot be seeded).
//! - [`checkpoint`]: atomic safetensors save/load of any [`Network`] (architecture checked by
//!   name), its statistics and optimizer.
//! - [`device`]: CPU by default; `--features cuda` for the GPU.

pub mod checkpoint;
pub mod cpu;
pub mod device;
mod error;
pub mod init;
pub mod layers;
pub mod loss;
pub mod network;
pub mod ops;
pub mod optim;
pub mod resnet;
pub mod schedule;

pub use error::{ModelError, Result};
pub use layers::{Kernels, Mode, Param, ParamKind};
pub use network::Network;
pub use ops::Precision;
pub use optim::{Sgd, SgdConfig};
pub use resnet::{ResNet, ResNetConfig};
pub use schedule::LrSchedule;
