//! End-to-end runs on small generated data: every policy trains, accounting adds up, pruning
//! really forwards fewer samples, bad input gives clear errors, static scores are computed and
//! charged. Resuming, divergence and damaged run folders: `resume.rs`.

mod common;

use std::path::Path;

use clap::Parser;
use common::{args, check_resume, done, rows, Cli};
use dynaprune_harness::run::accounting::{EpochRow, Summary};
use dynaprune_harness::run::train;

#[test]
fn every_policy_trains_end_to_end_and_accounting_adds_up() {
    let tmp = tempfile::tempdir().unwrap();
    let policies = [
        "full",
        "static-random",
        "el2n",
        "grand",
        "grand-last-layer",
        "forgetting",
        "random",
        "epsilon-greedy",
        "ucb",
        "infobatch",
        "rs2",
        "kakurenbo",
        "seta",
        "selective-backprop",
    ];
    for p in policies {
        let dir = tmp.path().join(p);
        let s = done(
            train(args(
                &dir,
                &[
                    "--policy",
                    p,
                    "--epochs",
                    "2",
                    "--el2n-epochs",
                    "1",
                    "--forgetting-epochs",
                    "1",
                    "--budget",
                    "nominal",
                ],
            ))
            .unwrap(),
        );
        assert_eq!(s.policy, p);
        let r = rows(&dir);
        assert_eq!(r.len(), 2, "{p}");
        // The summary's accuracies are the epochs' (evaluated every epoch here).
        assert_eq!(Some(s.final_test_acc), r[1].test_acc, "{p}");
        assert_eq!(s.best_test_acc, r[0].test_acc.unwrap().max(r[1].test_acc.unwrap()), "{p}");
        if p == "full" {
            // 4 classes: chance is 25%; two epochs on 384 images learn well above it.
            assert!(s.final_test_acc > 0.4, "full data learned nothing: {}", s.final_test_acc);
        }
        // Accounting adds up. Each epoch's components (re-scoring, selection, data, compute,
        // score updates) account for its training time: what is left over is loop overhead
        // (building the batch list, progress output), at most 10% + 20 ms even on a busy machine.
        // Each component that ran took time.
        let (mut cum, mut cum_train) = (0, 0.0);
        for row in &r {
            let parts = row.rescore_s + row.select_s + row.data_s + row.compute_s + row.observe_s;
            assert!(parts <= row.train_s, "{p} epoch {}: components {parts} > train {}", row.epoch, row.train_s);
            assert!(
                row.train_s - parts <= 0.1 * row.train_s + 0.02,
                "{p} epoch {}: {:.4}s of {:.4}s unaccounted",
                row.epoch,
                row.train_s - parts,
                row.train_s
            );
            assert!(
                row.select_s > 0.0 && row.data_s > 0.0 && row.compute_s > 0.0 && row.observe_s > 0.0,
                "{p}: {row:?}"
            );
            assert_eq!(row.rescore_s > 0.0, row.rescore_samples > 0, "{p}: {row:?}");
            assert!(row.cpu_s > 0.0, "{p}: CPU time recorded");
            // The epoch's wall clock holds training, evaluation and the checkpoint, in sequence.
            assert!(row.train_s + row.eval_s + row.checkpoint_s <= row.wall_s + 1e-3, "{p}: {row:?}");
            assert!(row.eval_s > 0.0 && row.checkpoint_s > 0.0, "{p}: {row:?}");
            cum += row.samples;
            cum_train += row.train_s;
            assert_eq!(row.cumulative_samples, cum);
            assert!((row.cumulative_train_s - cum_train).abs() < 1e-9, "{p}: cumulative_train_s is the running sum");
            if p != "infobatch" {
                assert_eq!(row.weight_sum, row.samples as f64, "{p}: unweighted plans weigh 1 per sample");
            }
        }
        // The summary's totals are the sums over epochs.
        assert_eq!(s.samples, cum);
        let sum = |f: fn(&EpochRow) -> f64| r.iter().map(f).sum::<f64>();
        for (name, total, over_epochs) in [
            ("train_s", s.train_s, sum(|x| x.train_s)),
            ("select_s", s.select_s, sum(|x| x.select_s)),
            ("data_s", s.data_s, sum(|x| x.data_s)),
            ("compute_s", s.compute_s, sum(|x| x.compute_s)),
            ("observe_s", s.observe_s, sum(|x| x.observe_s)),
            ("eval_s", s.eval_s, sum(|x| x.eval_s)),
            ("checkpoint_s", s.checkpoint_s, sum(|x| x.checkpoint_s)),
            ("rescore_s", s.rescore_s, sum(|x| x.rescore_s)),
            ("cpu_s", s.cpu_s, sum(|x| x.cpu_s)),
            ("wall_s", s.wall_s, sum(|x| x.wall_s)),
        ] {
            assert!((total - over_epochs).abs() < 1e-9, "{p}: summary {name} {total} vs epochs {over_epochs}");
        }
        assert_eq!(s.rescore_samples, r.iter().map(|x| x.rescore_samples).sum::<usize>());
        let is_static_scored = ["el2n", "grand", "grand-last-layer", "forgetting"].contains(&p);
        assert_eq!(s.static_scoring_s > 0.0, is_static_scored, "{p}: static scoring cost {}", s.static_scoring_s);
        // The total charges exactly the scoring cost recorded next to the scores, wall and CPU.
        let (recorded, recorded_cpu) = if is_static_scored {
            let info: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("scores.json")).unwrap()).unwrap();
            let cpu = info["cpu_seconds"].as_f64().expect("scores.json records its CPU time in `cpu_seconds`");
            assert!(cpu > 0.0, "{p}: scoring CPU time {cpu}");
            (info["seconds"].as_f64().expect("scores.json records its cost in `seconds`"), cpu)
        } else {
            (0.0, 0.0)
        };
        assert_eq!(s.static_scoring_s, recorded, "{p}");
        assert_eq!(s.static_scoring_cpu_s, Some(recorded_cpu), "{p}");
        assert_eq!(s.total_s, s.train_s + recorded, "{p}");
        if is_static_scored {
            assert!(dir.join("scores.csv").exists() && dir.join("scores.json").exists());
            assert!(s.static_scoring.as_deref().unwrap().contains(if p.starts_with("grand") {
                "GraNd"
            } else if p == "el2n" {
                "EL2N"
            } else {
                "forgetting"
            }));
        }
        let counts = std::fs::read_to_string(dir.join("selection_counts.csv")).unwrap();
        assert_eq!(counts.lines().count(), 385, "{p}: header + one row per training sample");
        assert!(dir.join("config.json").exists() && dir.join("checkpoint/state.json").exists());
        // Provenance names the CPU's features and the kernel path, which the report compares.
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        let kernels = config["provenance"]["kernels"].as_str().unwrap();
        assert_eq!(
            kernels,
            dynaprune_model::cpu::kernel_path(dynaprune_model::Kernels::Fast, &candle_core::Device::Cpu)
        );
        assert_eq!(config["provenance"]["cpu_features"].as_str().unwrap(), dynaprune_model::cpu::features());
    }
}

#[test]
fn a_pruned_run_forwards_fewer_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let full = done(train(args(&tmp.path().join("full"), &["--policy", "full"])).unwrap());
    let ucb = done(
        train(args(&tmp.path().join("ucb"), &["--policy", "ucb", "--prune-fraction", "0.5", "--budget", "nominal"]))
            .unwrap(),
    );
    assert_eq!(full.samples, 3 * 384);
    // One full warm-up epoch, then two epochs of exactly half.
    assert_eq!(ucb.samples, 384 + 2 * 192);
    let r = rows(&tmp.path().join("ucb"));
    assert_eq!(r.iter().map(|x| x.phase.as_str()).collect::<Vec<_>>(), ["warmup", "select", "select"]);
    assert_eq!(r.iter().map(|x| x.samples).collect::<Vec<_>>(), [384, 192, 192]);
    // "Sometimes samples": each sample was selected in 0, 1 or 2 of the 2 pruned epochs.
    assert_eq!(ucb.pruned_epochs, 2);
    assert_eq!(ucb.selection_histogram.len(), 3);
    assert_eq!(ucb.selection_histogram.iter().sum::<usize>(), 384);
    let h = &ucb.selection_histogram;
    assert_eq!(h[1] + 2 * h[2], 2 * 192, "selections add up to the samples trained on");
}

#[test]
fn infobatch_weights_and_annealing_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ib");
    let n = 384.0;
    // 8 epochs: a warm-up epoch, 6 soft-pruned epochs, and round(12.5% of 8) = 1 annealed epoch.
    let s = done(
        train(args(
            &dir,
            &["--policy", "infobatch", "--epochs", "8", "--prune-fraction", "0.3", "--budget", "nominal"],
        ))
        .unwrap(),
    );
    let r = rows(&dir);
    let phases: Vec<&str> = r.iter().map(|x| x.phase.as_str()).collect();
    assert_eq!(phases, ["warmup", "select", "select", "select", "select", "select", "select", "anneal"]);
    for x in &r {
        if x.phase == "select" {
            // Survivors of the below-mean group weigh 1 / (1 - r): the plan's total weight is the
            // dataset size up to the rounding of one group (at most 0.5 / (1 - r) <= 5 here).
            assert!((x.samples as f64) < n, "epoch {}: something was dropped", x.epoch);
            assert!((x.weight_sum - n).abs() <= 5.0 + 1e-3, "epoch {}: weight sum {}", x.epoch, x.weight_sum);
            assert!(x.weight_sum > x.samples as f64, "epoch {}: survivors are up-weighted", x.epoch);
        } else {
            // Warm-up and annealing: everything, with weight 1.
            assert_eq!((x.samples as f64, x.weight_sum), (n, n), "epoch {} ({})", x.epoch, x.phase);
        }
    }
    assert!(s.samples < 8 * 384 && s.samples > 2 * 384);
}

/// A slice of the real Fashion-MNIST (Debian's package, installed by `.ci/run`).
#[test]
fn trains_on_a_slice_of_real_fashion_mnist() {
    if !Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but /usr/share/datasets/fashion-mnist is missing: .ci/run must install dataset-fashion-mnist"
        );
        eprintln!("SKIPPED: /usr/share/datasets/fashion-mnist not found (apt-get install dataset-fashion-mnist)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fmnist");
    let a = args(
        &dir,
        &[
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            "/usr/share/datasets/fashion-mnist",
            "--max-train-samples",
            "2000",
            "--max-test-samples",
            "500",
            "--width",
            "1",
            "--policy",
            "ucb",
            "--epochs",
            "3",
        ],
    );
    let s = done(train(a).unwrap());
    // Matched budget: 0.5 * 2000 * 3 = 3000 passes, the warm-up's 2000 included.
    assert_eq!(s.samples, 2000 + 2 * 500);
    assert!(
        s.final_test_acc > 0.5,
        "three short epochs on 2,000 images reach well above chance (10%): {}",
        s.final_test_acc
    );
}

#[test]
fn bad_input_names_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = args(&tmp.path().join("a"), &["--dataset", "cifar10"]);
    a.data_dir = Some(tmp.path().join("nowhere"));
    let e = format!("{:#}", train(a).unwrap_err());
    assert!(e.contains("nowhere") && e.contains("cargo xtask fetch cifar10"), "{e}");
    let e = format!("{:#}", train(args(&tmp.path().join("b"), &["--prune-fraction", "1.0"])).unwrap_err());
    assert!(e.contains("--prune-fraction"), "{e}");
    // An unknown --model is refused by the parser, and by the run for arguments built in code.
    let e = Cli::try_parse_from(["dynaprune", "--model", "resnet7"]).err().expect("refused").to_string();
    assert!(e.contains("resnet7") && e.contains("resnet18") && e.contains("vgg11"), "{e}");
    let mut a = args(&tmp.path().join("c"), &[]);
    a.model = "resnet7".into();
    let e = format!("{:#}", train(a).unwrap_err());
    assert!(e.contains("resnet7") && e.contains("resnet18"), "{e}");
    let e = format!("{:#}", train(args(&tmp.path().join("d"), &["--device", "tpu"])).unwrap_err());
    assert!(e.contains("--device tpu"), "{e}");
    let e = format!(
        "{:#}",
        train(args(&tmp.path().join("e"), &["--warmup-epochs", "2", "--anneal-epochs", "2"])).unwrap_err()
    );
    assert!(e.contains("exceed --epochs"), "{e}");
    let e = format!(
        "{:#}",
        train(args(&tmp.path().join("f"), &["--policy", "el2n", "--scores", "/nonexistent/s.csv"])).unwrap_err()
    );
    assert!(e.contains("/nonexistent/s.csv"), "{e}");
    let e = format!("{:#}", train(args(&tmp.path().join("g"), &["--schedule", "warp"])).unwrap_err());
    assert!(e.contains("warp"), "{e}");
}

#[test]
fn score_files_are_reused_and_their_cost_charged() {
    let tmp = tempfile::tempdir().unwrap();
    let first = done(train(args(&tmp.path().join("a"), &["--policy", "grand-last-layer"])).unwrap());
    let scores = tmp.path().join("a/scores.csv");
    let reuse = done(
        train(args(&tmp.path().join("b"), &["--policy", "grand-last-layer", "--scores", scores.to_str().unwrap()]))
            .unwrap(),
    );
    assert_eq!(
        (first.static_scoring_s, first.static_scoring_cpu_s),
        (reuse.static_scoring_s, reuse.static_scoring_cpu_s),
        "the cost recorded with the scores is charged to every run using them"
    );
    assert!(!tmp.path().join("b/scores.csv").exists());
    let e = format!(
        "{:#}",
        train(args(&tmp.path().join("c"), &["--policy", "el2n", "--scores", scores.to_str().unwrap()])).unwrap_err()
    );
    assert!(e.contains("grand-last-layer") && e.contains("el2n"), "{e}");
}

#[test]
fn rescoring_is_charged_and_follows_each_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 384;
    // KAKURENBO: every sample hidden in epoch e gets a forward-only pass before epoch e + 1.
    let kdir = tmp.path().join("k");
    let k = done(
        train(args(
            &kdir,
            &[
                "--policy",
                "kakurenbo",
                "--kakurenbo-tau",
                "0",
                "--epochs",
                "4",
                "--prune-fraction",
                "0.5",
                "--budget",
                "nominal",
            ],
        ))
        .unwrap(),
    );
    assert_eq!(k.method, "kakurenbo");
    let r = rows(&kdir);
    for e in 1..r.len() {
        assert_eq!(r[e].rescore_samples, n - r[e - 1].samples, "epoch {e}: re-scored = hidden the epoch before");
        assert_eq!(r[e].rescore_samples > 0, r[e].rescore_s > 0.0, "epoch {e}: a pass that ran took time");
        assert!(r[e].rescore_s <= r[e].train_s, "epoch {e}: the pass is part of the training time");
        // F_e = 0.5 for progress < 0.3 (epochs 0, 1 of 4), 0.4 until 0.6 (epoch 2), 0.3 (epoch 3).
        let fe = [0.5, 0.5, 0.4, 0.3][e];
        assert_eq!(r[e].lr_factor, 1.0 / (1.0 - fe), "epoch {e}: learning rate scaled by 1/(1 - F_e)");
        assert!(n - r[e].samples <= (fe * n as f64) as usize, "epoch {e}: hides at most F_e n");
    }
    assert!(r.iter().any(|x| x.samples < n), "something was hidden");
    assert_eq!(k.rescore_samples, r.iter().map(|x| x.rescore_samples).sum::<usize>());
    assert!((k.rescore_s - r.iter().map(|x| x.rescore_s).sum::<f64>()).abs() < 1e-9);
    assert!(k.cpu_s > 0.0 && k.peak_rss_mib > 0.0);
    // UCB with --rescore-every 1: before each selection after the first, the samples not trained
    // on in the previous epoch.
    let udir = tmp.path().join("u");
    let u = done(
        train(args(&udir, &["--policy", "ucb", "--rescore-every", "1", "--epochs", "4", "--budget", "nominal"]))
            .unwrap(),
    );
    assert_eq!(u.method, "ucb+rescore1");
    let r = rows(&udir);
    assert_eq!(r.iter().map(|x| x.rescore_samples).collect::<Vec<_>>(), [0, 0, n / 2, n / 2]);
    assert_eq!(u.rescore_samples, n);
    // The original rule and rules that ignore scores never re-score.
    let p = done(train(args(&tmp.path().join("p"), &["--policy", "ucb", "--staleness", "off"])).unwrap());
    assert_eq!((p.method.as_str(), p.rescore_samples), ("ucb-plain", 0));
    let q = done(train(args(&tmp.path().join("q"), &["--policy", "rs2", "--rescore-every", "1"])).unwrap());
    assert_eq!((q.method.as_str(), q.rescore_samples), ("rs2", 0));
}

#[test]
fn dynamics_columns_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plain");
    let s = done(
        train(args(
            &dir,
            &[
                "--policy",
                "ucb",
                "--staleness",
                "off",
                "--epochs",
                "4",
                "--prune-fraction",
                "0.5",
                "--budget",
                "nominal",
            ],
        ))
        .unwrap(),
    );
    let r = rows(&dir);
    assert_eq!((r[0].coverage, r[0].never_selected), (None, None), "warm-up: no pruned epoch yet");
    for x in &r[1..] {
        // The original UCB keeps choosing the same half: the other half ages one epoch per epoch.
        assert_eq!(x.never_selected, Some(192));
        assert_eq!(x.coverage, Some(0.5));
        assert_eq!(x.max_staleness as usize, x.epoch - 1);
    }
    assert_eq!(r[2].overlap, Some(1.0));
    assert_eq!(s.mean_overlap, Some(1.0));
    let d = tmp.path().join("default");
    let t = done(
        train(args(&d, &["--policy", "ucb", "--epochs", "4", "--prune-fraction", "0.5", "--budget", "nominal"]))
            .unwrap(),
    );
    assert!(t.mean_overlap.unwrap() < 1.0, "the default UCB re-chooses: {:?}", t.mean_overlap);
}

#[test]
fn bad_new_flags_name_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for (flag, v) in [
        ("--staleness-retention", "1.5"),
        ("--staleness-drift", "-1"),
        ("--staleness-bonus", "NaN"),
        ("--kakurenbo-tau", "2"),
    ] {
        let kv = format!("{flag}={v}");
        let e = format!("{:#}", train(args(&tmp.path().join("x"), &["--policy", "ucb", &kv])).unwrap_err());
        assert!(e.contains(flag), "{flag} {v}: {e}");
    }
    let e = Cli::try_parse_from(["dynaprune", "--rescore-every=-1"]).err().unwrap().to_string();
    assert!(e.contains("--rescore-every"), "{e}");
    let e = Cli::try_parse_from(["dynaprune", "--staleness", "sometimes"]).err().unwrap().to_string();
    assert!(e.contains("prior") && e.contains("count-bonus") && e.contains("off"), "{e}");
    // --kakurenbo-lr: a value it does not know, or a rule it does not apply to.
    let e = Cli::try_parse_from(["dynaprune", "--kakurenbo-lr", "boosted"]).err().unwrap().to_string();
    assert!(e.contains("max-fraction") && e.contains("hidden-fraction"), "{e}");
    let ucb = ["--policy", "ucb", "--kakurenbo-lr", "hidden-fraction"];
    let e = format!("{:#}", train(args(&tmp.path().join("y"), &ucb)).unwrap_err());
    assert!(e.contains("--kakurenbo-lr") && e.contains("kakurenbo only"), "{e}");
    assert!(!tmp.path().join("y").exists(), "refused before anything was written");
    // SeTa's knobs: out of range, NaN, conflicting (an empty window), or given to another rule.
    for bad in [
        &["--seta-groups=0"][..],
        &["--seta-window-scale=0"],
        &["--seta-window-scale=-0.5"],
        &["--seta-window-scale=1.5"],
        &["--seta-window-scale=NaN"],
        &["--seta-delta=0"],
        &["--seta-delta=NaN"],
        &["--seta-groups=2", "--seta-window-scale=0.2"],
    ] {
        let flags = [&["--policy", "seta"][..], bad].concat();
        let e = format!("{:#}", train(args(&tmp.path().join("z"), &flags)).unwrap_err());
        let named = bad.last().unwrap().split('=').next().unwrap();
        assert!(e.contains(named), "{bad:?}: {e}");
        assert!(!tmp.path().join("z").exists(), "{bad:?}: refused before anything was written");
    }
    let e = Cli::try_parse_from(["dynaprune", "--seta-groups=-1"]).err().unwrap().to_string();
    assert!(e.contains("--seta-groups"), "{e}");
    let e = Cli::try_parse_from(["dynaprune", "--seta-budget", "roughly"]).err().unwrap().to_string();
    assert!(e.contains("exact") && e.contains("reference"), "{e}");
    let e =
        format!("{:#}", train(args(&tmp.path().join("w"), &["--policy", "ucb", "--seta-groups", "4"])).unwrap_err());
    assert!(e.contains("--seta-groups") && e.contains("seta only"), "{e}");
}

/// KAKURENBO with `--kakurenbo-lr hidden-fraction`: its own method label, a factor from what was
/// really hidden (never above the reference's from the largest fraction), and an unchanged
/// config for the reference rule.
#[test]
fn kakurenbo_lr_from_the_hidden_fraction() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let mut v = vec!["--policy", "kakurenbo", "--prune-fraction", "0.5", "--epochs", "4"];
        v.extend_from_slice(extra);
        done(train(args(&tmp.path().join(name), &v)).unwrap());
        rows(&tmp.path().join(name))
    };
    let reference = run("ref", &[]);
    let hidden = run("hidden", &["--kakurenbo-lr", "hidden-fraction"]);
    let s: Summary = serde_json::from_slice(&std::fs::read(tmp.path().join("hidden/summary.json")).unwrap()).unwrap();
    assert_eq!(s.method, "kakurenbo+lrhidden");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("ref/config.json")).unwrap()).unwrap();
    assert!(config["args"].get("kakurenbo_lr").is_none(), "the reference rule is not written: {config}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("hidden/config.json")).unwrap()).unwrap();
    assert_eq!(config["args"]["kakurenbo_lr"], "hidden-fraction");
    for (r, h) in reference.iter().zip(&hidden) {
        assert!(h.lr_factor <= r.lr_factor + 1e-12, "{} vs {}", h.lr_factor, r.lr_factor);
        assert!(h.lr_factor >= 1.0);
    }
    assert!(reference.iter().any(|r| r.lr_factor > 1.0), "the reference boosts while it hides");
}

#[test]
fn matched_budgets_spend_what_uniform_random_spends() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 384;
    // 4 epochs at 50%: uniform random spends 0.5 * 384 * 4 = 768 passes.
    let base = ["--epochs", "4", "--prune-fraction", "0.5"];
    let run = |name: &str, extra: &[&str]| {
        let v: Vec<&str> = base.iter().chain(extra).copied().collect();
        done(train(args(&tmp.path().join(name), &v)).unwrap())
    };
    let random = run("random", &["--policy", "random"]);
    assert_eq!((random.samples, random.budget.as_str()), (768, "matched"));
    // UCB warms up on all 384, then its 3 pruned epochs share the other 384: 128 each.
    let ucb = run("ucb", &["--policy", "ucb"]);
    assert_eq!(ucb.samples, 768);
    assert_eq!(rows(&tmp.path().join("ucb")).iter().map(|r| r.samples).collect::<Vec<_>>(), [n, 128, 128, 128]);
    assert!((ucb.pruned_epoch_fraction.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    // Random with the same warm-up: the warm-up's effect on its own, at the same cost.
    let rw = run("random-w", &["--policy", "random", "--warmup-epochs", "1"]);
    assert_eq!((rw.samples, rw.method.as_str()), (768, "random+warmup1"));
    // Nominal: the warm-up comes on top.
    let nominal = run("nominal", &["--policy", "ucb", "--budget", "nominal"]);
    assert_eq!((nominal.samples, nominal.budget.as_str()), (n + 3 * 192, "nominal"));
    // A budget the full-data epochs already spend is an error naming the flags and numbers.
    let e = format!(
        "{:#}",
        train(args(&tmp.path().join("bad"), &["--policy", "infobatch", "--epochs", "2", "--prune-fraction", "0.6"]))
            .unwrap_err()
    );
    assert!(
        e.contains("--budget matched")
            && e.contains("--warmup-epochs 1")
            && e.contains("cannot be met")
            && e.contains("0.800"),
        "{e}"
    );
}

/// `--precision bf16` trains and resumes bit-identically, is recorded in config.json, and changes
/// the numbers (its products really run in bf16); `f32` runs keep the config (and so the resume
/// fingerprint) they had before the flag existed; an unknown precision is refused with the list;
/// on a CPU without AVX512_BF16 the run is refused before anything is written.
#[test]
fn bf16_precision_trains_resumes_and_leaves_f32_runs_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Cli::try_parse_from(["dynaprune", "--precision", "fp8"]).err().unwrap().to_string();
    assert!(e.contains("f32") && e.contains("bf16"), "{e}");
    let json = serde_json::to_value(args(&tmp.path().join("a"), &[])).unwrap();
    assert!(json.get("precision").is_none(), "f32 is not written: {json}");
    if !dynaprune_model::ops::bf16_available() {
        let out = tmp.path().join("refused");
        let e = format!("{:#}", train(args(&out, &["--precision", "bf16"])).unwrap_err());
        assert!(e.contains("--precision bf16") && e.contains("AVX512_BF16"), "{e}");
        assert!(!out.exists(), "nothing written");
        return;
    }
    // Full width: the 16/32-channel products are large enough to run in bf16.
    let extra = ["--precision", "bf16", "--width", "1", "--policy", "ucb"];
    let (straight, _) = check_resume(tmp.path(), &extra, 1);
    let config = std::fs::read_to_string(straight.join("config.json")).unwrap();
    assert!(config.contains(r#""precision": "bf16""#), "{config}");
    let f32_run = tmp.path().join("f32");
    done(train(args(&f32_run, &["--width", "1", "--policy", "ucb"])).unwrap());
    let (b, f) = (rows(&straight), rows(&f32_run));
    assert_ne!(b[0].train_loss.to_bits(), f[0].train_loss.to_bits(), "bf16 changes the arithmetic");
    assert!((b[0].train_loss - f[0].train_loss).abs() < 0.05 * f[0].train_loss, "by rounding only");
}
