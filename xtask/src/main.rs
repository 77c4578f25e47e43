//! `cargo xtask <command>`: see `cargo xtask --help`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use xtask::{bench, bench_epoch, build_binary, cuda, fetch, repo_root, reproduce, results};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "dynaprune project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Download and verify datasets into data/: cifar10, cifar100, fashion-mnist or all.
    Fetch {
        /// Datasets.
        #[arg(required = true, value_parser = ["cifar10", "cifar100", "fashion-mnist", "all"])]
        datasets: Vec<String>,
        /// Target directory.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Base URL to download from instead of the publishers (a local mirror).
        #[arg(long)]
        mirror: Option<String>,
        /// Never install Debian's dataset-fashion-mnist package as a fallback.
        #[arg(long)]
        no_apt: bool,
    },
    /// Run the comparison grid of a preset and write results/<preset>/.
    Reproduce {
        /// smoke (seconds, generated data), quick (default, ~15-20 min), cpu (hours), paper (GPU).
        #[arg(long, default_value = "quick")]
        preset: String,
        /// Override the preset's methods.
        #[arg(long, value_delimiter = ',')]
        methods: Option<Vec<String>>,
        /// Override the preset's prune fractions.
        #[arg(long, value_delimiter = ',')]
        prune_fractions: Option<Vec<f64>>,
        /// Override the preset's seeds.
        #[arg(long, value_delimiter = ',')]
        seeds: Option<Vec<u64>>,
        /// Override the preset's epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Sample-pass budget of the pruning cells: matched (default: every rule spends what
        /// uniform random spends) or nominal (each pruned epoch removes the prune fraction).
        #[arg(long)]
        budget: Option<String>,
        /// Run only shard i of n (1-based), e.g. for a Slurm job array.
        #[arg(long, default_value = "1/1")]
        shard: String,
        /// Output directory (default results/<preset>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Threads per run.
        #[arg(long)]
        threads: Option<usize>,
        /// Print the commands instead of running them.
        #[arg(long)]
        dry_run: bool,
        /// Copy the committed reference runs of the preset (results/reference/<preset>) into
        /// the output first, so their cells are not trained again: only the report is made.
        #[arg(long)]
        reuse_reference: bool,
    },
    /// Regenerate results/<preset>/REPORT.md from whatever runs exist, and RESULTS.md from the
    /// committed cpu report.
    Report {
        /// The preset.
        #[arg(long, default_value = "quick")]
        preset: String,
        /// Results directory (default results/<preset>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Training/inference images/s: ours vs stock Candle vs PyTorch (if importable).
    BenchTrain {
        /// Thread counts.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// model:input pairs.
        #[arg(long, value_delimiter = ',', default_value = "resnet8:fmnist,resnet20:cifar,resnet18:cifar")]
        models: Vec<String>,
        /// Timed steps per measurement.
        #[arg(long, default_value_t = 10)]
        iters: usize,
        /// Skip PyTorch even if it is importable.
        #[arg(long)]
        no_torch: bool,
        /// Interleaved repetitions; medians over rounds are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Also write the lines to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Whole training epochs end to end, ours (`dynaprune train`) vs PyTorch (if importable):
    /// training and evaluation images/s and peak memory, medians over interleaved rounds.
    BenchEpoch {
        /// model:input pairs; input fmnist (real Fashion-MNIST) or cifar (3x32x32 generated).
        #[arg(long, value_delimiter = ',', default_value = "resnet8:fmnist,resnet20:cifar,resnet18:cifar")]
        models: Vec<String>,
        /// Threads for both sides.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Epochs per process; the first is a warm-up and not counted.
        #[arg(long, default_value_t = 2)]
        epochs: usize,
        /// Interleaved rounds.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// Training samples per epoch for fmnist (0 = all 60,000).
        #[arg(long, default_value_t = 20_000)]
        fmnist_samples: usize,
        /// Training samples per epoch for cifar (at most 4,096; 0 = all).
        #[arg(long, default_value_t = 2048)]
        cifar_samples: usize,
        /// PyTorch variants to try; the fastest is compared: eager, channels-last, compile.
        #[arg(long, value_delimiter = ',', default_value = "eager,channels-last")]
        torch_variants: Vec<String>,
        /// Precisions, interleaved in each round: f32, bf16 (ours: `--precision bf16`; PyTorch:
        /// CPU autocast to bf16).
        #[arg(long, value_delimiter = ',', default_value = "f32", value_parser = ["f32", "bf16"])]
        precision: Vec<String>,
        /// Our CPU kernels measured in f32, interleaved in each round (`dynaprune train
        /// --kernels`): im2col, direct, direct-avx512, direct-avx2, direct-portable.
        #[arg(long, value_delimiter = ',', default_value = "direct", value_parser = ["im2col", "direct", "direct-avx512", "direct-avx2", "direct-portable"])]
        kernels: Vec<String>,
        /// Skip PyTorch even if it is importable.
        #[arg(long)]
        no_torch: bool,
        /// Also write the lines to this file, under a provenance header.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prepare the CUDA build environment (nvcc and libraries from PyPI) in DIR.
    CudaEnv {
        /// Environment directory.
        dir: Option<PathBuf>,
    },
    /// Bring up a one-node Slurm cluster here (root; Debian's packages), run a small grid as a
    /// 3-task job array plus the dependent report job, check the merged report, tear it down.
    SlurmCheck,
    /// Build the dynaprune binary with --features cuda (no GPU needed).
    CudaCheck {
        /// Environment directory.
        dir: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let repo = repo_root();
    // Recorded in reports: paths inside the checkout are written relative to it.
    let root = repo.display().to_string();
    let command_line = format!("cargo xtask {}", std::env::args().skip(1).collect::<Vec<_>>().join(" "))
        .replace(&format!("{root}/"), "");
    match cli.command {
        Cmd::Fetch { datasets, data_dir, mirror, no_apt } => fetch_cmd(&repo, &datasets, data_dir, mirror, no_apt)?,
        cmd @ Cmd::Reproduce { .. } => reproduce_cmd(&repo, &command_line, cmd)?,
        Cmd::Report { preset, out } => {
            let p = reproduce::preset(&preset)?;
            let out = out.unwrap_or_else(|| repo.join("results").join(p.name));
            let binary = build_binary(&repo)?;
            reproduce::report(p.name, &binary, &out, &command_line, reproduce::reference_runs(p.name).as_deref())?;
            // RESULTS.md follows the committed cpu report (regenerated here when that was the one).
            results::write(&repo)?;
            eprintln!("wrote {} from {}", results::RESULTS_MD, results::CPU_REPORT);
        }
        cmd @ Cmd::BenchTrain { .. } => bench_train_cmd(&repo, &command_line, cmd)?,
        cmd @ Cmd::BenchEpoch { .. } => bench_epoch_cmd(&repo, &command_line, cmd)?,
        Cmd::CudaEnv { dir } => cuda::env(&repo, &dir.unwrap_or_else(cuda::default_dir))?,
        Cmd::CudaCheck { dir } => cuda::check(&repo, &dir.unwrap_or_else(cuda::default_dir))?,
        Cmd::SlurmCheck => {
            let status = std::process::Command::new("bash")
                .arg(repo.join("scripts/slurm/check.sh"))
                .current_dir(&repo)
                .status()
                .map_err(|e| anyhow::anyhow!("cannot run scripts/slurm/check.sh: {e}"))?;
            if !status.success() {
                anyhow::bail!("the Slurm check failed ({status}); see its output above");
            }
        }
    }
    Ok(())
}

/// `cargo xtask fetch`.
fn fetch_cmd(repo: &Path, datasets: &[String], data_dir: PathBuf, mirror: Option<String>, no_apt: bool) -> Result<()> {
    let data_dir = if data_dir.is_absolute() { data_dir } else { repo.join(data_dir) };
    let all = datasets.iter().any(|d| d == "all");
    let want = |d: &str| all || datasets.iter().any(|x| x == d);
    let mut failed = Vec::new();
    for d in ["fashion-mnist", "cifar10", "cifar100"].into_iter().filter(|d| want(d)) {
        let r = match d {
            "fashion-mnist" => {
                let bases: Vec<&str> = match &mirror {
                    Some(m) => vec![m.as_str()],
                    None => fetch::FASHION_MNIST_BASES.to_vec(),
                };
                fetch::fetch_fashion_mnist(
                    &data_dir,
                    std::path::Path::new(fetch::DEBIAN_FASHION_MNIST),
                    &bases,
                    !no_apt,
                )
            }
            other => fetch::fetch_cifar(&data_dir, other, mirror.as_deref().unwrap_or(fetch::CIFAR_BASE)),
        };
        if let Err(e) = r {
            eprintln!("error: {e:#}");
            failed.push(d);
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("could not fetch: {}", failed.join(", "));
    }
    Ok(())
}

/// `cargo xtask reproduce`.
fn reproduce_cmd(repo: &Path, command_line: &str, cmd: Cmd) -> Result<()> {
    let Cmd::Reproduce {
        preset,
        methods,
        prune_fractions,
        seeds,
        epochs,
        budget,
        shard,
        out,
        threads,
        dry_run,
        reuse_reference,
    } = cmd
    else {
        unreachable!("called for `reproduce` only")
    };
    let mut p = reproduce::preset(&preset)?;
    if let Some(b) = budget {
        if ![dynaprune::catalog::BUDGET_MATCHED, dynaprune::catalog::BUDGET_NOMINAL].contains(&b.as_str()) {
            anyhow::bail!("--budget {b}: expected matched or nominal");
        }
        p.budget = b;
    }
    if let Some(m) = methods {
        for x in &m {
            reproduce::method_flags(x).context("--methods")?;
        }
        p.methods = m;
    }
    if let Some(f) = prune_fractions {
        p.prune_fractions = f;
    }
    if let Some(s) = seeds {
        p.seeds = s;
    }
    if let Some(e) = epochs {
        p.epochs = e;
    }
    let out = out.unwrap_or_else(|| repo.join("results").join(p.name));
    let binary = build_binary(repo)?;
    let reference = reproduce::reference_runs(p.name);
    if reuse_reference {
        let r = reference.as_ref().with_context(|| {
            format!(
                "--reuse-reference: the preset `{}` has no committed reference (results/reference/{})",
                p.name, p.name
            )
        })?;
        let n = reproduce::reuse_reference(r.parent().expect("runs/ has a parent"), &out)?;
        eprintln!("--reuse-reference: copied {n} finished reference runs into {}", out.display());
    }
    let o = reproduce::Options {
        binary,
        out,
        shard: reproduce::parse_shard(&shard)?,
        threads,
        dry_run,
        command: command_line.to_string(),
        reference,
    };
    reproduce::reproduce(&p, &o)?;
    Ok(())
}

/// `cargo xtask bench-train`.
fn bench_train_cmd(repo: &Path, command_line: &str, cmd: Cmd) -> Result<()> {
    let Cmd::BenchTrain { threads, models, iters, no_torch, rounds, out } = cmd else {
        unreachable!("called for `bench-train` only")
    };
    let binary = build_binary(repo)?;
    let torch = if no_torch {
        None
    } else {
        match (bench::find_torch_python(), bench::find_torch_script(repo)) {
            (Some(py), Some(script)) => Some((py, script)),
            (py, script) => {
                eprintln!(
                    "PyTorch comparison skipped: {}",
                    if py.is_none() {
                        "no python3 that can `import torch` (set DYNAPRUNE_TORCH_PYTHON)"
                    } else {
                        "reference script not found (set DYNAPRUNE_TORCH_BENCH)"
                    }
                );
                let _ = script;
                None
            }
        }
    };
    bench::run(&bench::Options {
        binary,
        threads,
        models,
        iters,
        torch,
        rounds,
        out,
        command: command_line.to_string(),
    })?;
    Ok(())
}

/// `cargo xtask bench-epoch`.
fn bench_epoch_cmd(repo: &Path, command_line: &str, cmd: Cmd) -> Result<()> {
    let Cmd::BenchEpoch {
        models,
        threads,
        epochs,
        rounds,
        fmnist_samples,
        cifar_samples,
        torch_variants,
        precision,
        kernels,
        no_torch,
        out,
    } = cmd
    else {
        unreachable!("called for `bench-epoch` only")
    };
    let binary = build_binary(repo)?;
    let torch = if no_torch { None } else { bench::find_torch_python().zip(bench_epoch::find_script(repo)) };
    let header = bench::provenance_header(command_line, &binary);
    print!("{header}");
    let o = bench_epoch::Options {
        binary,
        models,
        threads,
        epochs,
        rounds,
        train_samples: (fmnist_samples, cifar_samples),
        torch,
        torch_variants,
        precisions: precision,
        kernels,
        // Where `dynaprune train` finds it: data/fashion-mnist first, then Debian's package.
        fmnist_dir: [repo.join("data/fashion-mnist"), std::path::PathBuf::from(fetch::DEBIAN_FASHION_MNIST)]
            .into_iter()
            .find(|d| d.join("train-images-idx3-ubyte.gz").exists())
            .unwrap_or_else(|| repo.join("data/fashion-mnist")),
        scratch: std::env::temp_dir().join(format!("dynaprune-bench-epoch-{}", std::process::id())),
    };
    let lines = bench_epoch::run(&o)?;
    if let Some(path) = out {
        let text = format!("{header}{}\n", lines.join("\n"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        dynaprune_io::write_atomic(&path, text.as_bytes())?;
    }
    Ok(())
}
