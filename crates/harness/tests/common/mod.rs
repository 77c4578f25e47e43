//! What the end-to-end run tests share: the flags of a small run on generated data, and
//! readers of its results.

#![allow(dead_code)] // each test file uses its own part

use std::path::Path;

use clap::Parser;
use dynaprune_harness::config::TrainArgs;
use dynaprune_harness::run::accounting::{EpochRow, Summary};
use dynaprune_harness::run::{train, Outcome};

#[derive(Parser)]
pub struct Cli {
    #[command(flatten)]
    pub args: TrainArgs,
}

pub fn args(out: &Path, extra: &[&str]) -> TrainArgs {
    let base = [
        "dynaprune",
        "--dataset",
        "synthetic",
        "--max-train-samples",
        "384",
        "--max-test-samples",
        "128",
        "--model",
        "resnet8",
        "--width",
        "0.5",
        "--batch-size",
        "64",
        "--epochs",
        "3",
        "--lr",
        "0.05",
        "--progress",
        "plain",
        "--scorer-models",
        "2",
    ];
    // Flags given in `extra` replace the base ones (clap rejects repeated flags).
    let mut v: Vec<String> = vec![base[0].to_string()];
    v.push("--out".into());
    v.push(out.display().to_string());
    for pair in base[1..].chunks(2) {
        if !extra.contains(&pair[0]) {
            v.extend(pair.iter().map(|s| s.to_string()));
        }
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(v).args
}

pub fn done(o: Outcome) -> Summary {
    match o {
        Outcome::Done(s) => s,
        Outcome::Stopped(e) => panic!("stopped at {e}"),
    }
}

pub fn rows(dir: &Path) -> Vec<EpochRow> {
    csv::Reader::from_path(dir.join("epochs.csv")).unwrap().deserialize().collect::<Result<_, _>>().unwrap()
}

/// Runs `extra` straight through and stopped after `stop` epochs then resumed; both must agree bit
/// for bit. Returns the two run directories.
pub fn check_resume(tmp: &Path, extra: &[&str], stop: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let straight = tmp.join("straight");
    let resumed = tmp.join("resumed");
    let a = done(train(args(&straight, extra)).unwrap());
    let mut first = args(&resumed, extra);
    first.stop_after = Some(stop);
    assert!(matches!(train(first).unwrap(), Outcome::Stopped(s) if s == stop));
    let mut again = args(&resumed, extra);
    again.resume = true;
    let b = done(train(again).unwrap());
    assert_eq!(a.final_test_acc.to_bits(), b.final_test_acc.to_bits(), "bit-identical final accuracy");
    assert_eq!(a.final_test_loss.to_bits(), b.final_test_loss.to_bits());
    let (ra, rb) = (rows(&straight), rows(&resumed));
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(
            (x.train_loss.to_bits(), x.samples, x.test_acc, x.rescore_samples, x.lr_factor.to_bits()),
            (y.train_loss.to_bits(), y.samples, y.test_acc, y.rescore_samples, y.lr_factor.to_bits()),
            "epoch {}",
            x.epoch
        );
    }
    assert_eq!(
        std::fs::read(straight.join("selection_counts.csv")).unwrap(),
        std::fs::read(resumed.join("selection_counts.csv")).unwrap()
    );
    (straight, resumed)
}
