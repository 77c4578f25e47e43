//! `cargo xtask bench-epoch`: what users feel. Whole training epochs end to end, ours through the
//! real loop of `dynaprune train` (data assembly, forward, per-sample loss, pruner observe,
//! optimiser step, evaluation) and PyTorch's through the strongest fair loop we could write
//! (`xtask/torch/torch_epoch_bench.py`: the same network and recipe on pre-loaded tensors, no
//! DataLoader, optionally `channels_last` and `torch.compile`).
//!
//! Rounds are interleaved (ours, then each PyTorch variant, then ours again, ...). The first epoch
//! of every process is a warm-up and is not counted; the median over the other epochs of all
//! rounds is reported, per side, for training and for evaluation, with the peak RSS of each side's
//! process. PyTorch's number is its fastest variant, named in the output. `--precision f32,bf16`
//! measures both precisions in the same rounds (bf16: ours with `--precision bf16`, PyTorch
//! under `torch.autocast("cpu", torch.bfloat16)`). `--kernels im2col,direct,direct-avx2` measures
//! several of our CPU kernel paths in the same rounds (f32; bf16 runs on im2col), each line naming
//! its path; the header's first line names the CPU and the features the kernels dispatch on.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::bench::median;

/// Options of `cargo xtask bench-epoch`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `dynaprune` binary.
    pub binary: PathBuf,
    /// `model:input` pairs; input `fmnist` (real Fashion-MNIST) or `cifar` (3x32x32 generated).
    pub models: Vec<String>,
    /// Threads for both sides.
    pub threads: usize,
    /// Epochs per process (the first is a warm-up).
    pub epochs: usize,
    /// Interleaved rounds.
    pub rounds: usize,
    /// Training samples per epoch for `fmnist` and for `cifar` (0 = all).
    pub train_samples: (usize, usize),
    /// Python with torch and the epoch script, if available.
    pub torch: Option<(String, PathBuf)>,
    /// PyTorch variants tried: `eager`, `channels-last`, `compile`.
    pub torch_variants: Vec<String>,
    /// Precisions measured (interleaved within each round): `f32`, `bf16` (ours with
    /// `--precision bf16`, PyTorch under CPU autocast to bf16).
    pub precisions: Vec<String>,
    /// Our CPU kernels (`dynaprune train --kernels`) measured in f32, interleaved in each round.
    pub kernels: Vec<String>,
    /// Fashion-MNIST's directory (for the PyTorch side; ours finds it itself).
    pub fmnist_dir: PathBuf,
    /// Scratch directory for our runs.
    pub scratch: PathBuf,
}

/// One side's per-epoch measurements (warm-up epochs dropped) and peak memory.
#[derive(Debug, Default, Clone)]
struct Side {
    train: Vec<f64>,
    eval: Vec<f64>,
    rss_mib: f64,
    test_acc: f64,
    /// The kernel path our run recorded in its provenance.
    path: String,
}

#[derive(Deserialize)]
struct TorchEpoch {
    epoch: usize,
    train_img_per_s: f64,
    eval_img_per_s: f64,
    test_acc: f64,
    peak_rss_mib: f64,
}

fn parse_spec(spec: &str) -> Result<(&str, &str)> {
    let (model, input) = spec.split_once(':').with_context(|| format!("--models entry `{spec}`: model:input"))?;
    if !["fmnist", "cifar"].contains(&input) {
        bail!("--models entry `{spec}`: input must be fmnist or cifar");
    }
    Ok((model, input))
}

/// One `dynaprune train` process: full data, `epochs` epochs, evaluation every epoch.
fn ours(
    o: &Options,
    model: &str,
    input: &str,
    (precision, kernels): (&str, &str),
    round: usize,
    side: &mut Side,
) -> Result<()> {
    let out = o.scratch.join(format!("{model}-{input}-{round}"));
    let _ = std::fs::remove_dir_all(&out);
    let (dataset, n) =
        if input == "fmnist" { ("fashion-mnist", o.train_samples.0) } else { ("synthetic-cifar", o.train_samples.1) };
    let status = Command::new(&o.binary)
        .args([
            "train",
            "--dataset",
            dataset,
            "--model",
            model,
            "--policy",
            dynaprune::catalog::FULL.name,
            "--progress",
            "plain",
        ])
        .args(["--epochs", &o.epochs.to_string(), "--threads", &o.threads.to_string()])
        .args(["--max-train-samples", &n.to_string(), "--precision", precision, "--kernels", kernels, "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running dynaprune train")?;
    if !status.success() {
        bail!("dynaprune train --model {model} --dataset {dataset} --kernels {kernels} failed");
    }
    #[derive(Deserialize)]
    struct Row {
        epoch: usize,
        samples: usize,
        train_s: f64,
        eval_s: f64,
        test_acc: Option<f64>,
    }
    #[derive(Deserialize)]
    struct Provenance {
        kernels: Option<String>,
    }
    #[derive(Deserialize)]
    struct Config {
        test_samples: usize,
        provenance: Provenance,
    }
    #[derive(Deserialize)]
    struct Summary {
        peak_rss_mib: f64,
    }
    let config: Config = serde_json::from_slice(&std::fs::read(out.join("config.json"))?)?;
    let summary: Summary = serde_json::from_slice(&std::fs::read(out.join("summary.json"))?)?;
    let mut r = csv::Reader::from_path(out.join("epochs.csv")).context("reading epochs.csv")?;
    for row in r.deserialize::<Row>() {
        let row = row?;
        side.test_acc = row.test_acc.unwrap_or(f64::NAN);
        if row.epoch > 0 || o.epochs == 1 {
            side.train.push(row.samples as f64 / row.train_s);
            side.eval.push(config.test_samples as f64 / row.eval_s);
        }
    }
    side.rss_mib = side.rss_mib.max(summary.peak_rss_mib);
    side.path = config.provenance.kernels.unwrap_or_else(|| "not recorded".into());
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// One PyTorch process of `variant`.
fn torch(
    o: &Options,
    (py, script): &(String, PathBuf),
    model: &str,
    input: &str,
    (variant, precision): (&str, &str),
    side: &mut Side,
) -> Result<()> {
    let n = if input == "fmnist" { o.train_samples.0 } else { o.train_samples.1 };
    let mut c = Command::new(py);
    c.arg(script)
        .args(["--model", model, "--data", input, "--fmnist-dir"])
        .arg(&o.fmnist_dir)
        .args(["--epochs", &o.epochs.to_string(), "--threads", &o.threads.to_string()])
        .args(["--train-samples", &n.to_string()])
        .env("OMP_NUM_THREADS", o.threads.to_string());
    match variant {
        "eager" => {}
        "channels-last" => {
            c.arg("--channels-last");
        }
        "compile" => {
            c.arg("--compile");
        }
        other => bail!("--torch-variants: unknown variant `{other}` (eager, channels-last, compile)"),
    }
    if precision == "bf16" {
        c.arg("--autocast-bf16");
    }
    let out = c.output().with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} ({variant}) failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('{')) {
        let e: TorchEpoch = serde_json::from_str(line).with_context(|| format!("{}: `{line}`", script.display()))?;
        side.test_acc = e.test_acc;
        if e.epoch > 0 || o.epochs == 1 {
            side.train.push(e.train_img_per_s);
            side.eval.push(e.eval_img_per_s);
        }
        side.rss_mib = side.rss_mib.max(e.peak_rss_mib);
    }
    Ok(())
}

/// Runs every case and returns the lines it printed.
pub fn run(o: &Options) -> Result<Vec<String>> {
    if o.epochs == 0 || o.rounds == 0 {
        bail!("--epochs and --rounds must be at least 1");
    }
    std::fs::create_dir_all(&o.scratch)?;
    let mut lines = Vec::new();
    let mut say = |l: String| {
        println!("{l}");
        lines.push(l);
    };
    if o.torch.is_none() {
        say("note: PyTorch is not available (no python3 that can `import torch`, or no script): ours only".into());
    }
    // Ours: each kernel path in f32; bf16 on im2col (the direct kernels are f32 only).
    let mut configs: Vec<(&str, &str)> = Vec::new();
    for p in &o.precisions {
        if p == "bf16" {
            configs.push(("bf16", "im2col"));
        } else {
            configs.extend(o.kernels.iter().map(|k| (p.as_str(), k.as_str())));
        }
    }
    for spec in &o.models {
        let (model, input) = parse_spec(spec)?;
        let mut mine: Vec<Side> = vec![Side::default(); configs.len()];
        // Per precision, each PyTorch variant.
        let mut theirs: Vec<Vec<(String, Side)>> = o
            .precisions
            .iter()
            .map(|_| o.torch_variants.iter().map(|v| (v.clone(), Side::default())).collect())
            .collect();
        for round in 0..o.rounds {
            for (pi, precision) in o.precisions.iter().enumerate() {
                for (ci, c) in configs.iter().enumerate().filter(|(_, c)| c.0 == precision) {
                    ours(o, model, input, *c, round, &mut mine[ci])?;
                }
                if let Some(t) = &o.torch {
                    for (variant, side) in theirs[pi].iter_mut() {
                        torch(o, t, model, input, (variant, precision), side)?;
                    }
                }
            }
        }
        for (ci, (precision, kernels)) in configs.iter().enumerate() {
            let pi = o.precisions.iter().position(|p| p == precision).expect("configs come from precisions");
            for l in case_lines(o, model, input, (precision, kernels), &mine[ci], &theirs[pi]) {
                say(l);
            }
        }
    }
    Ok(lines)
}

/// The two ratio lines and the detail line of one case in one precision.
fn case_lines(
    o: &Options,
    model: &str,
    input: &str,
    (precision, kernels): (&str, &str),
    mine: &Side,
    theirs: &[(String, Side)],
) -> Vec<String> {
    let (ot, oe) = (median(mine.train.clone()), median(mine.eval.clone()));
    // f32 lines keep the exact form plus our kernels; bf16 ones name the precision.
    let t = if precision == "f32" { o.threads.to_string() } else { format!("{} precision={precision}", o.threads) };
    let t = format!("{t} kernels={kernels}");
    let best = |f: fn(&Side) -> f64| {
        theirs.iter().filter(|(_, s)| !s.train.is_empty()).max_by(|a, b| f(&a.1).total_cmp(&f(&b.1))).cloned()
    };
    let fmt = |ours: f64, torch: Option<f64>| match torch {
        Some(v) => format!("ours_img_per_s={ours:.1} torch_img_per_s={v:.1} ratio={:.2}x", ours / v),
        None => format!("ours_img_per_s={ours:.1} torch_img_per_s=n/a ratio=n/a"),
    };
    let bt = best(|s| median(s.train.clone()));
    let be = best(|s| median(s.eval.clone()));
    let mut lines = vec![
        format!(
            "epoch model={model} input={input} threads={t} {}",
            fmt(ot, bt.as_ref().map(|b| median(b.1.train.clone())))
        ),
        format!(
            "epoch model={model} input={input} mode=eval threads={t} {}",
            fmt(oe, be.as_ref().map(|b| median(b.1.eval.clone())))
        ),
    ];
    let mut detail = format!(
        "  {precision} ours ({}): peak RSS {:.0} MiB, test acc after the last epoch {:.4}",
        mine.path, mine.rss_mib, mine.test_acc
    );
    for (variant, s) in theirs {
        if !s.train.is_empty() {
            detail.push_str(&format!(
                "; torch {variant}: train {:.1} img/s, eval {:.1} img/s, peak RSS {:.0} MiB, test acc {:.4}",
                median(s.train.clone()),
                median(s.eval.clone()),
                s.rss_mib,
                s.test_acc
            ));
        }
    }
    if let (Some(bt), Some(be)) = (&bt, &be) {
        detail.push_str(&format!(" (fastest PyTorch: {} for training, {} for evaluation)", bt.0, be.0));
    }
    lines.push(detail);
    lines
}

/// The epoch script, if present: `$DYNAPRUNE_TORCH_EPOCH`, else `xtask/torch/torch_epoch_bench.py`.
pub fn find_script(repo: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DYNAPRUNE_TORCH_EPOCH") {
        return Some(PathBuf::from(p));
    }
    let p = repo.join("xtask/torch/torch_epoch_bench.py");
    p.exists().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_medians() {
        assert_eq!(parse_spec("resnet8:fmnist").unwrap(), ("resnet8", "fmnist"));
        assert!(parse_spec("resnet8").unwrap_err().to_string().contains("model:input"));
        assert!(parse_spec("resnet8:imagenet").unwrap_err().to_string().contains("fmnist or cifar"));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(vec![]).is_nan());
    }
}
