//! The one place that maps model names to constructors. Swapping the model (another
//! architecture, another framework's network behind the same calls) means editing this file:
//! the training loop only needs `forward`, parameters, checkpoints and FLOP counts.

use anyhow::{Context, Result};
use candle_core::Device;
use dynaprune_model::{Kernels, ResNet, ResNetConfig};

/// Names accepted by `--model`.
pub const MODELS: [&str; 6] = ResNetConfig::NAMES;

/// Builds model `name` for images with `channels` channels and `classes` classes, its weights
/// drawn from `seed`, on `device` with the kernels that suit it.
pub fn build(name: &str, width: f64, channels: usize, classes: usize, seed: u64, device: &Device) -> Result<ResNet> {
    let config = ResNetConfig::by_name(name, channels, classes)
        .with_context(|| format!("--model {name}: expected one of {}", MODELS.join(", ")))?
        .width_multiplier(width)
        .context("--width")?;
    Ok(ResNet::new(config, seed, device, Kernels::for_device(device))?)
}
