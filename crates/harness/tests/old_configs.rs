//! Runs made by earlier binaries keep working: the committed `config.json` of reference runs
//! still resume and report. A resumed run is asked for with the same command line as the
//! original; its flags, resolved by this build, must give the fingerprint the original recorded
//! (`checkpoint::fingerprint` of the recorded flags), or `--resume` would refuse it.

use clap::Parser;
use dynaprune_harness::config::TrainArgs;
use dynaprune_harness::run::checkpoint::fingerprint;
use dynaprune_harness::run::RunRecord;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

/// Committed runs from the binaries of 030811b (seeds 3-4 of the cpu grid) and a09ff9c (SeTa and
/// Selective-Backprop), one per kind of rule: full data, static scores, dynamic with staleness,
/// re-scoring, annealing, batch-level.
const RUNS: [&str; 7] = [
    "full-pf0.00-s3",
    "matched/el2n-pf0.50-s3",
    "matched/ucb-pf0.50-s3",
    "matched/epsilon-greedy-plain-pf0.50-s3",
    "matched/kakurenbo-pf0.50-s3",
    "matched/infobatch-pf0.50-s3",
    "matched/selective-backprop-pf0.50-s0",
];

#[test]
fn committed_runs_resolve_to_the_fingerprint_they_recorded() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/reference/cpu/runs/fashion-mnist");
    for run in RUNS {
        let path = root.join(run).join("config.json");
        let record: RunRecord = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} no longer reads: {e}", path.display()));
        // The command line as the grid ran it (its binary's name first; no quoted arguments).
        let words: Vec<&str> = record.provenance.command.split_whitespace().collect();
        assert_eq!(words.get(1), Some(&"train"), "{run}: {}", record.provenance.command);
        let again = Cli::parse_from(std::iter::once("dynaprune").chain(words[2..].iter().copied())).args;
        let s = again.resolve().unwrap_or_else(|e| panic!("{run}: {e:#}"));
        assert_eq!(fingerprint(&s.record), fingerprint(&record.args), "{run}: the flags resolve differently now");
        assert_eq!(s.record.method_label(), record.args.method_label(), "{run}");
    }
}

#[test]
fn the_committed_reports_still_load_every_run() {
    let runs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/reference/quick/runs");
    let rows = dynaprune_harness::report::collect(&runs).unwrap();
    assert!(rows.len() >= 7, "{} runs", rows.len());
    assert!(rows.iter().all(|r| r.final_test_acc > 0.5), "every committed run reads with its accuracy");
}
