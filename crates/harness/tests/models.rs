//! Every registered model, through the real training loop: it builds for the data's shape,
//! trains with a dynamic rule and a features-based static scorer, and a run stopped and resumed
//! from its checkpoint ends bit for bit where the uninterrupted run ends. A model added to the
//! registry is covered here without a new test.

use std::path::Path;

use clap::Parser;
use dynaprune_harness::config::TrainArgs;
use dynaprune_harness::models;
use dynaprune_harness::run::accounting::EpochRow;
use dynaprune_harness::run::{train, Outcome};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

fn args(out: &Path, model: &str, extra: &[&str]) -> TrainArgs {
    let mut v: Vec<String> = [
        "dynaprune",
        "--dataset",
        "synthetic",
        "--max-train-samples",
        "256",
        "--max-test-samples",
        "128",
        "--width",
        "0.25",
        "--batch-size",
        "64",
        "--epochs",
        "3",
        "--lr",
        "0.05",
        "--progress",
        "plain",
        "--scorer-models",
        "1",
        "--model",
        model,
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(v).args
}

fn rows(dir: &Path) -> Vec<(u64, usize, Option<u64>)> {
    csv::Reader::from_path(dir.join("epochs.csv"))
        .unwrap()
        .deserialize::<EpochRow>()
        .map(|r| r.unwrap())
        .map(|r| (r.train_loss.to_bits(), r.samples, r.test_acc.map(f64::to_bits)))
        .collect()
}

#[test]
fn every_registered_model_trains_scores_and_resumes_bit_identically() {
    let tmp = tempfile::tempdir().unwrap();
    for entry in models::builtin() {
        let name = entry.name;
        let straight = tmp.path().join(format!("{name}-straight"));
        let resumed = tmp.path().join(format!("{name}-resumed"));
        let extra = ["--policy", "ucb", "--prune-fraction", "0.3"];
        let Outcome::Done(a) = train(args(&straight, name, &extra)).unwrap() else { panic!("{name} stopped") };
        assert!(a.final_test_acc.is_finite() && a.samples < 3 * 256, "{name}: {a:?}");
        let mut first = args(&resumed, name, &extra);
        first.stop_after = Some(2);
        assert!(matches!(train(first).unwrap(), Outcome::Stopped(2)), "{name}");
        let mut again = args(&resumed, name, &extra);
        again.resume = true;
        let Outcome::Done(b) = train(again).unwrap() else { panic!("{name} stopped") };
        assert_eq!(a.final_test_acc.to_bits(), b.final_test_acc.to_bits(), "{name}: resume is bit-identical");
        assert_eq!(rows(&straight), rows(&resumed), "{name}");
        // Last-layer GraNd reads the features in front of the head.
        let scored = tmp.path().join(format!("{name}-grand"));
        let Outcome::Done(s) = train(args(&scored, name, &["--policy", "grand-last-layer"])).unwrap() else {
            panic!("{name} stopped")
        };
        assert!(s.static_scoring_s > 0.0 && s.samples < 3 * 256, "{name}: {s:?}");
    }
}

/// The direct kernels (`--kernels direct`: NHWC activations, BatchNorm fused) through the real
/// loop for every registered model: they train, resume bit-identically, and the run records the
/// flag and the kernel path with its instruction set. Refused before anything is written: the
/// direct kernels in bf16.
#[test]
fn every_registered_model_trains_and_resumes_on_the_direct_kernels() {
    let tmp = tempfile::tempdir().unwrap();
    let isa = dynaprune_model::ops::direct::Isa::best().name();
    for entry in models::builtin() {
        let name = entry.name;
        let straight = tmp.path().join(format!("{name}-straight"));
        let resumed = tmp.path().join(format!("{name}-resumed"));
        let two_epochs = |out: &Path| {
            let mut a = args(out, name, &["--policy", "ucb", "--prune-fraction", "0.3", "--kernels", "direct"]);
            a.epochs = 2;
            a
        };
        let Outcome::Done(a) = train(two_epochs(&straight)).unwrap() else { panic!("{name} stopped") };
        assert!(a.final_test_acc.is_finite(), "{name}: {a:?}");
        let mut first = two_epochs(&resumed);
        first.stop_after = Some(1);
        assert!(matches!(train(first).unwrap(), Outcome::Stopped(1)), "{name}");
        let mut again = two_epochs(&resumed);
        again.resume = true;
        let Outcome::Done(b) = train(again).unwrap() else { panic!("{name} stopped") };
        assert_eq!(rows(&straight), rows(&resumed), "{name}: resume is bit-identical");
        assert_eq!(a.final_test_acc.to_bits(), b.final_test_acc.to_bits(), "{name}");
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(straight.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["args"]["kernels"], "direct", "{name}: {config}");
        let path = config["provenance"]["kernels"].as_str().unwrap();
        assert!(path.starts_with(&format!("direct f32 ({isa} kernels")), "{name}: {path}");
    }
    let out = tmp.path().join("bf16");
    let e = train(args(&out, "resnet8", &["--kernels", "direct", "--precision", "bf16"])).unwrap_err();
    assert!(format!("{e:#}").contains("--kernels direct") && format!("{e:#}").contains("f32 only"), "{e:#}");
    assert!(!out.exists(), "refused before anything is written");
}

#[test]
fn unknown_models_list_the_registered_ones() {
    let e = Cli::try_parse_from(["dynaprune", "--model", "resnet9"]).err().expect("rejected").to_string();
    for entry in models::builtin() {
        assert!(e.contains(entry.name), "{e}");
    }
    let help = models::help();
    assert!(models::builtin().iter().all(|m| help.contains(m.name) && help.contains(m.help)), "{help}");
}
