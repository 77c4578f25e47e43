//! The `dynaprune` command: `train`, `score`, `report`, `bench-train`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dynaprune_harness::config::{ScorerArg, TrainArgs};
use dynaprune_harness::train::Outcome;
use dynaprune_harness::{bench, datasets, engine, report, scorers, train};

// glibc's allocator returns large freed blocks to the kernel and faults them back in on every
// training step (about a third of CPU training time in our measurements); mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "dynaprune", version, about = "Train with dynamic data pruning, measure it honestly.")]
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
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    // Candle's elementwise pool spins between ops; on small machines that spinning competes with
    // the compute threads. A short spin limit keeps the pool responsive without burning a core.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // SAFETY (edition 2021: safe call): no other thread exists yet.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "1000");
    }
    if let Some(n) = threads {
        if n == 0 {
            anyhow::bail!("--threads must be at least 1");
        }
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("configuring the thread pool")?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => {
            set_threads(args.threads)?;
            match train::train(args)? {
                Outcome::Done(s) => println!(
                    "done: {} {} prune {:.2}: test acc {:.4}, train {:.1}s + static scoring {:.1}s = {:.1}s, {} of {} sample passes",
                    s.dataset, s.policy, s.prune_fraction, s.final_test_acc, s.train_s, s.static_scoring_s, s.total_s, s.samples, s.full_data_samples
                ),
                Outcome::Stopped(e) => println!("stopped after epoch {e} (--stop-after); continue with --resume"),
            }
        }
        Command::Score { scorer, scores_out, mut train } => {
            set_threads(train.threads)?;
            train.resolve()?;
            let device = dynaprune_model::device::parse(&train.device)?;
            let env = engine::Env::new(datasets::load(&train)?, &train, &device)?;
            let (s, info) = scorers::compute(scorer, &train, &env)?;
            scorers::save(&scores_out, &s, &info)?;
            println!("{}: {} scores in {:.1}s -> {}", info.scorer, s.len(), info.seconds, scores_out.display());
        }
        Command::Report(args) => report::run(&args)?,
        Command::BenchTrain(args) => {
            set_threads(None)?;
            bench::run(&args)?
        }
    }
    Ok(())
}
