//! `dynaprune bench-train`: training and inference images/s of our CPU kernels and of stock
//! Candle, for the same networks, measured in one process (one line per network, mode and
//! kernels; `cargo xtask bench-train` runs it per thread count and adds PyTorch).
//!
//! Method (the same as `xtask/torch/torch_resnet_bench.py`): random inputs and labels, batch
//! 128, SGD with Nesterov momentum and weight decay, `warmup` untimed steps, then the median
//! (and best) of `iters` timed steps.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::Optimizer;
use clap::Args;
use dynaprune_model::{loss, ops, Kernels, Mode, Network, Sgd, SgdConfig};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::models::{self, BuildSpec};
use crate::output;

/// Flags of `dynaprune bench-train`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// `model:input` pairs; input is `fmnist` (1x28x28) or `cifar` (3x32x32).
    #[arg(long, default_value = "resnet8:fmnist,resnet20:cifar,resnet18:cifar", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Kernels to measure: fast or im2col (ours, im2col + GEMM), fast-bf16 or im2col-bf16 (with
    /// bf16 products, AVX512_BF16), direct (ours, direct NHWC convolutions on this CPU's fastest
    /// instruction set; direct-avx512, direct-avx2, direct-portable force one), candle (stock),
    /// candle-bf16 (stock, convolutions cast to bf16).
    #[arg(long, default_value = "fast,candle", value_delimiter = ',')]
    pub kernels: Vec<String>,
    /// Modes: train, infer.
    #[arg(long, default_value = "train,infer", value_delimiter = ',')]
    pub modes: Vec<String>,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 8)]
    pub iters: usize,
    /// Also print where the time of our kernels goes (per op, forward and backward).
    #[arg(long)]
    pub breakdown: bool,
    /// Append results as JSON lines to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N. Off the CPU only `--kernels candle` exists, and every timed
    /// step ends with a device synchronisation.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    /// Network.
    pub model: String,
    /// `fmnist` or `cifar`.
    pub input: String,
    /// `train` or `infer`.
    pub mode: String,
    /// `fast` or `candle`.
    pub kernels: String,
    /// `cpu`, `cuda`, ... (absent in files written before the flag existed).
    #[serde(default = "cpu")]
    pub device: String,
    /// Worker threads.
    pub threads: usize,
    /// Batch size.
    pub batch: usize,
    /// Images per second at the median step time.
    pub img_per_s: f64,
    /// Images per second at the best step time.
    pub best_img_per_s: f64,
    /// Achieved GFLOP/s at the median (2 FLOPs per multiply-accumulate).
    pub gflops: f64,
}

fn cpu() -> String {
    "cpu".into()
}

/// A `--models` entry `model:input` as `(model, input, channels, side)`; input is `fmnist`
/// (1x28x28) or `cifar` (3x32x32). Shared by `bench-train` and `device-check`.
pub(crate) fn parse_model_spec(spec: &str) -> Result<(&str, &str, usize, usize)> {
    let (model, input) =
        spec.split_once(':').with_context(|| format!("--models entry `{spec}`: expected model:input"))?;
    let (c, hw) = match input {
        "fmnist" => (1, 28),
        "cifar" => (3, 32),
        other => bail!("--models entry `{spec}`: unknown input `{other}` (expected fmnist or cifar)"),
    };
    models::check_inputs(model, c, hw, hw).with_context(|| format!("--models entry `{spec}`"))?;
    Ok((model, input, c, hw))
}

fn time_steps(
    device: &Device,
    warmup: usize,
    iters: usize,
    mut step: impl FnMut() -> Result<()>,
) -> Result<(f64, f64)> {
    for _ in 0..warmup {
        step()?;
    }
    device.synchronize()?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        step()?;
        // GPU kernels run asynchronously: a step is done when the device is idle.
        device.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

/// The kernels `--kernels k` names, refused on a device that cannot run them.
fn kernels_of(k: &str, device: &Device, device_flag: &str) -> Result<Kernels> {
    Ok(match k {
        "fast" | "fast-bf16" if !device.is_cpu() => {
            bail!("--kernels {k} runs on the CPU only; on --device {} use --kernels candle", device_flag)
        }
        k if k != "candle" && k != "candle-bf16" && !device.is_cpu() => {
            bail!("--kernels {k} runs on the CPU only; on --device {} use --kernels candle", device_flag)
        }
        k => Kernels::from_name(k).with_context(|| format!("--kernels {k}"))?,
    })
}

/// Times training steps of `model` on the batch `(x, y)`: median and best seconds per step and
/// the FLOPs of one image's step; with `--breakdown`, prints the phases of a step.
fn time_train(
    model: &dyn Network,
    x: &Tensor,
    y: &Tensor,
    device: &Device,
    args: &BenchArgs,
    hw: usize,
) -> Result<(f64, f64, f64)> {
    let mut opt = Sgd::from_params(model.params(), SgdConfig { lr: 0.05, ..SgdConfig::default() })?;
    // The phases of a step as the training loop runs them (per-sample losses
    // and correctness copied out for the pruner), summed over all steps.
    let mut phases = [0f64; 4];
    let (m, b) = time_steps(device, args.warmup, args.iters, || {
        let t0 = Instant::now();
        let logits = model.forward(x, true)?;
        let t1 = Instant::now();
        let per = loss::cross_entropy_per_sample(&logits, y, 0.0)?;
        let l = loss::weighted_mean(&per, None)?;
        let t2 = Instant::now();
        let grads = l.backward()?;
        let t3 = Instant::now();
        opt.step(&grads)?;
        let t4 = Instant::now();
        per.to_vec1::<f32>()?;
        loss::correct(&logits, y)?.to_vec1::<f32>()?;
        let t5 = Instant::now();
        for (acc, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, (t4 - t3) + (t5 - t4)]) {
            *acc += d.as_secs_f64();
        }
        Ok(())
    })?;
    if args.breakdown {
        let steps = (args.warmup + args.iters.max(1)) as f64;
        let names = ["forward", "loss", "backward", "optimizer + per-sample outputs"];
        let parts: Vec<String> =
            names.iter().zip(phases).map(|(n, s)| format!("{n} {:.1} ms", 1e3 * s / steps)).collect();
        println!("  step phases: {}", parts.join(", "));
    }
    Ok((m, b, model.train_flops(hw, hw) as f64))
}

/// Runs the benchmark and prints one line per measurement.
pub fn run(args: &BenchArgs) -> Result<()> {
    let threads = rayon::current_num_threads();
    // The thread pool was configured from RAYON_NUM_THREADS by the binary.
    let device = dynaprune_model::device::parse(&args.device)?;
    let mut results = Vec::new();
    for spec in &args.models {
        let (model_name, input, c, hw) = parse_model_spec(spec)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let xs: Vec<f32> = (0..args.batch * c * hw * hw).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let x = Tensor::from_vec(xs, (args.batch, c, hw, hw), &device)?;
        let y = Tensor::from_vec((0..args.batch as u32).map(|i| i % 10).collect::<Vec<_>>(), args.batch, &device)?;
        for k in &args.kernels {
            let kernels = kernels_of(k, &device, &args.device)?;
            let model = models::build(model_name, &BuildSpec { kernels, ..BuildSpec::new(c, hw, hw, 10, 0, &device) })?;
            for mode in &args.modes {
                ops::profile::enable(args.breakdown && kernels.is_fast());
                let _ = ops::profile::take();
                let (med, best, flops) = match mode.as_str() {
                    "train" => time_train(model.as_ref(), &x, &y, &device, args, hw)?,
                    "infer" => {
                        let (m, b) = time_steps(&device, args.warmup, args.iters, || {
                            model.forward_mode(&x, Mode::Eval)?.argmax(1)?;
                            Ok(())
                        })?;
                        (m, b, 2.0 * model.forward_macs(hw, hw) as f64)
                    }
                    other => bail!("unknown mode `{other}`: expected train or infer"),
                };
                let r = BenchResult {
                    model: model_name.into(),
                    input: input.into(),
                    mode: mode.clone(),
                    kernels: k.clone(),
                    device: args.device.clone(),
                    threads,
                    batch: args.batch,
                    img_per_s: args.batch as f64 / med,
                    best_img_per_s: args.batch as f64 / best,
                    gflops: flops * args.batch as f64 / med / 1e9,
                };
                println!(
                    "bench model={} input={} mode={} kernels={} device={} threads={} batch={} img_per_s={:.1} best_img_per_s={:.1} gflops={:.1}",
                    r.model, r.input, r.mode, r.kernels, r.device, r.threads, r.batch, r.img_per_s, r.best_img_per_s, r.gflops
                );
                if args.breakdown && kernels.is_fast() {
                    let steps = (args.warmup + args.iters) as f64;
                    let parts: Vec<String> =
                        ops::profile::take().iter().map(|(n, s)| format!("{n} {:.1} ms", 1e3 * s / steps)).collect();
                    println!("  per step: {} | total {:.1} ms", parts.join(", "), 1e3 * med);
                }
                results.push(r);
            }
        }
    }
    ops::profile::enable(false);
    if let Some(path) = &args.json {
        let mut text = std::fs::read_to_string(path).unwrap_or_default();
        for r in &results {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        output::write_atomic(path, text.as_bytes())?;
    }
    Ok(())
}
