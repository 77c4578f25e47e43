//! The ResNets of `dynaprune-model` ([`ResNet`]): He et al.'s CIFAR family and the CIFAR
//! ResNet-18, for any input channels and size (global average pooling before the head).

use anyhow::Result;
use dynaprune_model::{Network, ResNet, ResNetConfig};

use super::{BuildSpec, Inputs, ModelEntry};

fn build(name: &str, s: &BuildSpec) -> Result<Box<dyn Network>> {
    let config = ResNetConfig::by_name(name, s.channels, s.classes)?.width_multiplier(s.width_multiplier)?;
    Ok(Box::new(ResNet::with_dtype(config, s.seed, s.dtype, &s.device, s.kernels)?))
}

/// The registry's entries.
#[rustfmt::skip]
pub const ENTRIES: &[ModelEntry] = &[
    ModelEntry { name: "resnet8", help: "ResNet-8, widths 16-32-64, one block per stage", inputs: Inputs::ANY, build: |s| build("resnet8", s) },
    ModelEntry { name: "resnet14", help: "ResNet-14, widths 16-32-64", inputs: Inputs::ANY, build: |s| build("resnet14", s) },
    ModelEntry { name: "resnet20", help: "ResNet-20, widths 16-32-64", inputs: Inputs::ANY, build: |s| build("resnet20", s) },
    ModelEntry { name: "resnet32", help: "ResNet-32, widths 16-32-64", inputs: Inputs::ANY, build: |s| build("resnet32", s) },
    ModelEntry { name: "resnet56", help: "ResNet-56, widths 16-32-64", inputs: Inputs::ANY, build: |s| build("resnet56", s) },
    ModelEntry { name: "resnet18", help: "CIFAR ResNet-18, widths 64-512, the paper's network", inputs: Inputs::ANY, build: |s| build("resnet18", s) },
];
