//! The `dynaprune` command: `train`, `score`, `report`, `bench-train`, `device-check`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dynaprune_harness::config::{ScorerArg, TrainArgs};
use dynaprune_harness::run::{engine, train, Outcome};
use dynaprune_harness::tools::{bench, device_check};
use dynaprune_harness::{datasets, report, scoring};

// glibc's allocator returns large freed blocks to the kernel and faults them back in on every
// training step (about a third of CPU training time in our measurements); mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "dynaprune",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("DYNAPRUNE_BUILD_COMMIT"), ")"),
    about = "Train with dynamic data pruning, measure it honestly.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train one run (any policy), writing config, per-epoch CSV, summary and checkpoints.
    Train(TrainArgs),
    /// Compute static scores (EL2N, GraNd, forgetting) into a CSV, timing the computation.
    Score {
        /// The scorer.
        #[arg(long, value_enum)]
        scorer: ScorerArg,
        /// Output CSV (a `.json` sidecar with provenance and cost is written next to it).
        #[arg(long = "scores-out")]
        scores_out: PathBuf,
        #[command(flatten)]
        train: TrainArgs,
    },
    /// Merge finished runs under a directory into runs.csv, REPORT.md and SVG plots.
    Report(report::ReportArgs),
    /// Training and inference images/s of our kernels and stock Candle, side by side.
    BenchTrain(bench::BenchArgs),
    /// Check that a device (cuda; or cpu: stock Candle's ops) computes what our CPU kernels
    /// compute: logits, losses, gradients, one SGD step, BatchNorm statistics.
    DeviceCheck(device_check::DeviceCheckArgs),
}

/// Sets up the threads before anything else runs: one rayon pool of `threads` workers (default:
/// all cores) that every parallel kernel shares, and, for our kernels (`tuned`), Candle's own
/// elementwise pool reduced to the calling thread. On small machines the extra spinning pool and
/// the main thread compete with the compute workers; measured on 2 cores this costs 10-20% of
/// training throughput (see docs/PERFORMANCE.md).
fn configure_threads(threads: Option<usize>, tuned: bool) -> Result<()> {
    let from_env = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
    let n = threads.or(from_env).unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if n == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    // Edition 2021: `set_var` is safe to call; no other thread exists yet.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    if tuned && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("configuring the thread pool")?;
    Ok(())
}

/// mimalloc reads its options from the environment when the process starts, before `main`.
/// We want `MIMALLOC_PURGE_DELAY=-1` (never return freed memory to the OS): a training step
/// frees and reallocates the same large buffers, and letting mimalloc purge them between steps
/// made the kernel zero-fill fresh pages (`clear_page`) for 12-14% of CPU time in profiles of
/// ResNet-20 training (0.9% with the setting). Setting the option at run time does not have the
/// same effect, so if it is not in the environment we put it there and re-execute ourselves once.
#[cfg(unix)]
fn ensure_allocator_env() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    // Edition 2021: `set_var` is safe to call; no other thread exists yet.
    std::env::set_var("MIMALLOC_PURGE_DELAY", "-1");
    let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec();
    // `exec` only returns on failure: carry on with the default allocator settings.
    eprintln!("note: could not re-execute with MIMALLOC_PURGE_DELAY=-1 ({err}); continuing");
}

#[cfg(not(unix))]
fn ensure_allocator_env() {}

fn main() -> Result<()> {
    ensure_allocator_env();
    let cli = Cli::parse();
    let (threads, tuned) = match &cli.command {
        Command::Train(a) => (a.threads, true),
        Command::Score { train, .. } => (train.threads, true),
        Command::Report(_) => (None, true),
        Command::BenchTrain(b) => (None, !b.kernels.iter().any(|k| k == "candle")),
        Command::DeviceCheck(_) => (None, false),
    };
    configure_threads(threads, tuned)?;
    // Run on a pool worker, so the thread that drives training is one of the compute threads
    // instead of an extra one competing with them. Not with a single worker: the batch
    // prefetcher's parallel assembly would then wait for the one worker, which waits for the
    // batch (a deadlock, seen with `--threads 1`).
    if rayon::current_num_threads() > 1 {
        rayon::scope(|_| run(cli.command))
    } else {
        run(cli.command)
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(args) => match train(args)? {
            Outcome::Done(s) => println!(
                "done: {} {} prune {:.2}: test acc {:.4}, train {:.1}s + static scoring {:.1}s = {:.1}s, {} of {} sample passes",
                s.dataset, s.policy, s.prune_fraction, s.final_test_acc, s.train_s, s.static_scoring_s, s.total_s, s.samples, s.full_data_samples
            ),
            Outcome::Stopped(e) => println!("stopped after epoch {e} (--stop-after); continue with --resume"),
        },
        Command::Score { scorer, scores_out, train } => {
            let s = train.resolve()?;
            let env = engine::Env::new(datasets::load(&s.data, s.run.seed)?, s.data.augment, s.run.seed, &s.run.device)?;
            let (scores, info) = scoring::compute(scorer, &s, &env)?;
            scoring::save(&scores_out, &scores, &info)?;
            let cpu = info.cpu_seconds.map_or(String::new(), |c| format!(" ({c:.1}s CPU)"));
            println!("{}: {} scores in {:.1}s{cpu} -> {}", info.scorer, scores.len(), info.seconds, scores_out.display());
        }
        Command::Report(args) => report::run(&args)?,
        Command::BenchTrain(args) => bench::run(&args)?,
        Command::DeviceCheck(args) => device_check::run(&args)?,
    }
    Ok(())
}
