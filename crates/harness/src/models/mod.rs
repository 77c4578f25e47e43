//! The model registry: the one place that maps a `--model` name to a constructor, the inputs it
//! accepts and its help text. Everything else (training, scoring, checkpoints, `bench-train`,
//! `device-check`) sees a `Box<dyn Network>`.
//!
//! **Adding a model** is one new file in this folder, holding a type that implements
//! [`Network`] (built from `dynaprune-model`'s layers and fast ops) and its `ENTRIES`, plus one
//! line (the file's name) in the `builtin!` list below. A model defined outside this crate (a
//! test, a downstream binary) calls [`register`] before training.
//!
//! | file | models |
//! |---|---|
//! | [`resnet`] | `resnet8`, `resnet14`, `resnet20`, `resnet32`, `resnet56`, `resnet18` |
//! | [`mlp`] | `mlp` |
//! | [`vgg`] | `vgg11` |

use std::sync::{LazyLock, RwLock};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use dynaprune_model::{Kernels, Network};

/// What a constructor gets: the data's shape, the number of classes and the run's choices.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Output classes.
    pub classes: usize,
    /// `--width`: multiplies the network's widths (1 = as published).
    pub width_multiplier: f64,
    /// The seed its weights are drawn from.
    pub seed: u64,
    /// Where it lives.
    pub device: Device,
    /// Which kernels (our fast CPU ops, or Candle's own; [`Kernels::for_device`] for training).
    pub kernels: Kernels,
    /// The parameters' dtype (f32 for training; f64 for `device-check`'s reference).
    pub dtype: DType,
}

impl BuildSpec {
    /// f32 weights from `seed` on `device` with the kernels that suit it, width multiplier 1.
    pub fn new(channels: usize, height: usize, width: usize, classes: usize, seed: u64, device: &Device) -> Self {
        Self {
            channels,
            height,
            width,
            classes,
            width_multiplier: 1.0,
            seed,
            device: device.clone(),
            kernels: Kernels::for_device(device),
            dtype: DType::F32,
        }
    }
}

/// The inputs a model accepts; anything else is refused before training starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// Required channels (`None`: any).
    pub channels: Option<usize>,
    /// Smallest height and width.
    pub min_size: usize,
}

impl Inputs {
    /// Any image.
    pub const ANY: Inputs = Inputs { channels: None, min_size: 1 };
}

/// A registered model.
#[derive(Debug, Clone, Copy)]
pub struct ModelEntry {
    /// The `--model` name.
    pub name: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    /// The inputs it accepts.
    pub inputs: Inputs,
    /// The constructor.
    pub build: fn(&BuildSpec) -> Result<Box<dyn Network>>,
}

/// Declares the model files and collects their entries, in this order, into [`builtin`].
macro_rules! builtin {
    ($($file:ident),* $(,)?) => {
        $(pub mod $file;)*
        /// The models this binary ships with.
        pub fn builtin() -> Vec<ModelEntry> {
            let mut all = Vec::new();
            $(all.extend_from_slice($file::ENTRIES);)*
            all
        }
    };
}

// One line per model file.
builtin! {
    resnet,
    mlp,
    vgg,
}

static REGISTRY: LazyLock<RwLock<Vec<ModelEntry>>> = LazyLock::new(|| RwLock::new(builtin()));

/// Adds a model (e.g. one defined in a test or a downstream binary). A name that is taken is an
/// error.
pub fn register(entry: ModelEntry) -> Result<()> {
    let mut r = REGISTRY.write().expect("model registry lock");
    if r.iter().any(|e| e.name == entry.name) {
        bail!("a model named `{}` is already registered", entry.name);
    }
    r.push(entry);
    Ok(())
}

/// The registered models, built-in first.
pub fn entries() -> Vec<ModelEntry> {
    REGISTRY.read().expect("model registry lock").clone()
}

/// The registered names.
pub fn names() -> Vec<&'static str> {
    entries().iter().map(|e| e.name).collect()
}

/// The entry for `name`, or an error listing every registered name.
pub fn entry(name: &str) -> Result<ModelEntry> {
    entries()
        .into_iter()
        .find(|e| e.name == name)
        .with_context(|| format!("--model {name}: unknown model; registered: {}", names().join(", ")))
}

/// `--model`'s parser: a registered name, or an error listing them.
pub fn parse_name(name: &str) -> std::result::Result<String, String> {
    entry(name)
        .map(|e| e.name.to_string())
        .map_err(|_| format!("unknown model `{name}`; registered: {}", names().join(", ")))
}

/// `--model`'s help: every registered model with its line.
pub fn help() -> String {
    let list: Vec<String> = entries().iter().map(|e| format!("{} ({})", e.name, e.help)).collect();
    format!("Model: {}", list.join("; "))
}

/// Checks that model `name` accepts images of `channels x height x width`.
pub fn check_inputs(name: &str, channels: usize, height: usize, width: usize) -> Result<()> {
    let e = entry(name)?;
    if let Some(c) = e.inputs.channels {
        if c != channels {
            bail!("--model {name} takes {c}-channel images, but the dataset's have {channels} channels ({channels}x{height}x{width})");
        }
    }
    if height.min(width) < e.inputs.min_size {
        bail!(
            "--model {name} needs images of at least {m}x{m} pixels, but the dataset's are {height}x{width}",
            m = e.inputs.min_size
        );
    }
    Ok(())
}

/// Builds model `name` for `spec`, after checking that it accepts the input shape.
pub fn build(name: &str, spec: &BuildSpec) -> Result<Box<dyn Network>> {
    check_inputs(name, spec.channels, spec.height, spec.width)?;
    if !(spec.width_multiplier.is_finite() && spec.width_multiplier > 0.0) {
        bail!("--width must be a positive number, got {}", spec.width_multiplier);
    }
    (entry(name)?.build)(spec).with_context(|| format!("building --model {name}"))
}
