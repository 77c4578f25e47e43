//! Resuming an interrupted run reproduces the uninterrupted one bit for bit (every rule with
//! state beyond the score buffer: KAKURENBO's re-scoring, SeTa's window, Selective-Backprop's
//! selector); divergence stops with a clear error and keeps the last checkpoint; damaged run
//! folders are recovered or named.

mod common;

use std::path::Path;

use common::{args, check_resume, done, rows};
use dynaprune_harness::run::accounting::Summary;
use dynaprune_harness::run::{train, Outcome};

#[test]
fn resume_reproduces_kakurenbo_across_its_rescoring() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, _) = check_resume(
        tmp.path(),
        &["--policy", "kakurenbo", "--kakurenbo-tau", "0", "--epochs", "4", "--prune-fraction", "0.5"],
        2,
    );
    assert!(rows(&straight).iter().any(|r| r.rescore_samples > 0), "the run re-scored hidden samples");
}

#[test]
fn resume_reproduces_seta_across_its_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let flags = ["--policy", "seta", "--epochs", "5", "--prune-fraction", "0.5", "--budget", "nominal"];
    let (straight, _) =
        check_resume(tmp.path(), &[&flags[..], &["--seta-groups", "3", "--seta-window-scale", "0.67"]].concat(), 2);
    let r = rows(&straight);
    // A full-data warm-up, then exactly half per epoch: every group, two windows, then (epoch 5 >
    // 0.875 * 5) a random half.
    assert_eq!(r.iter().map(|x| x.samples).collect::<Vec<_>>(), [384, 192, 192, 192, 192]);
    assert_eq!(
        r.iter().map(|x| x.phase.as_str()).collect::<Vec<_>>(),
        ["warmup", "select", "select", "select", "select"]
    );
}

#[test]
fn selective_backprop_trains_what_it_keeps_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let flags = ["--policy", "selective-backprop", "--epochs", "4", "--prune-fraction", "0.5", "--batch-size", "32"];
    let (straight, _) = check_resume(tmp.path(), &flags, 2);
    let r = rows(&straight);
    for x in &r {
        // Every sample gets a candidate pass, charged as a forward-only pass; some train (about
        // half in the first epoch; fewer later, as falling losses rank low against the history
        // of older ones: this tiny set's history of 1024 spans almost 3 epochs).
        assert_eq!(x.rescore_samples, 384, "epoch {}", x.epoch);
        assert!(x.rescore_s > 0.0);
        assert!((30..=280).contains(&x.samples), "epoch {}: {} of 384 trained", x.epoch, x.samples);
        assert_eq!(x.phase, "select");
        assert_eq!((x.overlap, x.coverage, x.weight_sum), (None, None, x.samples as f64));
    }
    assert!(std::fs::read(straight.join("checkpoint/selector.bin")).unwrap().starts_with(b"DPSBSEL1"));
    // An exponent so large that (almost) every candidate batch keeps nothing: the epochs still
    // run through all their candidates, train what little was kept (the first loss ever seen is
    // kept for sure: its percentile is 1), and the run finishes.
    let dir = tmp.path().join("empty");
    let s = done(train(args(&dir, &[&flags[..], &["--sb-beta", "1e9"]].concat())).unwrap());
    let r = rows(&dir);
    assert!(r.iter().all(|x| x.rescore_samples == 384 && x.samples < 16), "{r:?}");
    assert!(s.final_test_loss.is_finite());
    assert_eq!(s.samples, r.iter().map(|x| x.samples).sum::<usize>());
}

#[test]
fn resume_reproduces_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = ["--policy", "epsilon-greedy", "--augment", "light"];
    let (_, resumed) = check_resume(tmp.path(), &extra, 1);
    let a = done(
        train({
            let mut x = args(&resumed, &extra);
            x.resume = true;
            x
        })
        .unwrap(),
    );
    assert_eq!(a.epochs, 3, "--resume on a finished run reports it");
    let mut first = args(&tmp.path().join("y"), &extra);
    first.stop_after = Some(1);
    assert!(matches!(train(first).unwrap(), Outcome::Stopped(1)));
    // Without --resume an interrupted run is not overwritten.
    let e = train(args(&tmp.path().join("y"), &extra)).unwrap_err().to_string();
    assert!(e.contains("--resume"), "{e}");
    // Resuming with different flags is refused.
    let mut other = args(&tmp.path().join("x"), &extra);
    other.stop_after = Some(1);
    train(other).unwrap();
    let mut changed = args(&tmp.path().join("x"), &["--policy", "ucb"]);
    changed.resume = true;
    assert!(train(changed).unwrap_err().to_string().contains("flags differ"));
}

#[test]
fn divergence_stops_with_a_clear_error_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    // Diverging from the first step: a clear error, no summary, and no checkpoint (nothing good
    // was ever completed).
    let dir = tmp.path().join("nan");
    let e = format!(
        "{:#}",
        train(args(&dir, &["--policy", "full", "--epochs", "2", "--lr", "1e12", "--schedule", "constant"]))
            .unwrap_err()
    );
    assert!(e.contains("non-finite training loss") && e.contains("epoch 0") && e.contains("--lr"), "{e}");
    assert!(!dir.join("summary.json").exists() && !dir.join("checkpoint").exists());
    // Diverging after a good epoch: the checkpoint of that epoch stays exactly as it was. The
    // checkpoint's weights are made NaN so that the resumed epoch 1 diverges.
    let dir = tmp.path().join("later");
    let extra = ["--policy", "full", "--epochs", "3"];
    let mut first = args(&dir, &extra);
    first.stop_after = Some(1);
    assert!(matches!(train(first).unwrap(), Outcome::Stopped(1)));
    let model = dir.join("checkpoint/model.safetensors");
    let tensors = candle_core::safetensors::load(&model, &candle_core::Device::Cpu).unwrap();
    let blown: std::collections::HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if k.starts_with("param.") { (t * f64::NAN).unwrap() } else { t };
            (k, t)
        })
        .collect();
    candle_core::safetensors::save(&blown, &model).unwrap();
    let snapshot = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d.join("checkpoint"))
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&dir);
    let mut again = args(&dir, &extra);
    again.resume = true;
    let e = format!("{:#}", train(again).unwrap_err());
    assert!(e.contains("non-finite training loss") && e.contains("epoch 1"), "{e}");
    assert!(!dir.join("summary.json").exists(), "a diverged run is not reported as finished");
    assert_eq!(snapshot(&dir), before, "the last good checkpoint is kept, byte for byte");
}

#[test]
fn damaged_run_directories_are_recovered_or_named() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = ["--policy", "ucb", "--epochs", "3"];
    let straight = done(train(args(&tmp.path().join("straight"), &extra)).unwrap());
    let stopped = |name: &str| {
        let d = tmp.path().join(name);
        let mut a = args(&d, &extra);
        a.stop_after = Some(1);
        assert!(matches!(train(a).unwrap(), Outcome::Stopped(1)));
        d
    };
    let resume = |d: &Path| {
        let mut a = args(d, &extra);
        a.resume = true;
        train(a)
    };
    let same_as_straight = |s: Summary| {
        assert_eq!(s.final_test_acc.to_bits(), straight.final_test_acc.to_bits());
        assert_eq!(s.final_test_loss.to_bits(), straight.final_test_loss.to_bits());
    };
    // A crash between the two renames of a checkpoint swap leaves only `checkpoint.old`: it is
    // put back and the run continues as if nothing happened.
    let d = stopped("old");
    let first_epoch = rows(&d)[0].clone();
    std::fs::rename(d.join("checkpoint"), d.join("checkpoint.old")).unwrap();
    same_as_straight(done(resume(&d).unwrap()));
    assert!(!d.join("checkpoint.old").exists());
    // Continued, not restarted: epoch 0 is the record of the first invocation, timing included.
    assert_eq!(rows(&d)[0], first_epoch, "epoch 0 was not run again");
    // With neither checkpoint nor checkpoint.old, --resume refuses instead of starting over.
    let d = stopped("gone");
    std::fs::remove_dir_all(d.join("checkpoint")).unwrap();
    let e = format!("{:#}", resume(&d).unwrap_err());
    assert!(e.contains("epochs.csv") && e.contains("cannot continue"), "{e}");
    // A half-written `checkpoint.tmp` from a crash during the write is ignored and replaced.
    let d = stopped("tmp");
    std::fs::create_dir_all(d.join("checkpoint.tmp")).unwrap();
    std::fs::write(d.join("checkpoint.tmp/model.safetensors"), b"half a file").unwrap();
    same_as_straight(done(resume(&d).unwrap()));
    assert!(!d.join("checkpoint.tmp").exists());
    // Damaged files: a clear error naming the file; the checkpoint is left for inspection and
    // the run is neither finished nor silently restarted.
    let truncate = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        std::fs::write(p, &b[..b.len() / 2]).unwrap();
    };
    let garbage = |p: &Path| std::fs::write(p, b"{ not json").unwrap();
    let remove = |p: &Path| std::fs::remove_file(p).unwrap();
    type Damage<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Damage, &str); 4] = [
        ("pruner", &truncate, "pruner.bin"),
        ("model", &truncate, "model.safetensors"),
        ("state", &garbage, "state.json"),
        ("nostate", &remove, "state.json"),
    ];
    for (name, damage, file) in cases {
        let d = stopped(name);
        damage(&d.join("checkpoint").join(file));
        let e = format!("{:#}", resume(&d).unwrap_err());
        assert!(e.contains(file), "{name}: the error names {file}: {e}");
        assert!(d.join("checkpoint").exists() && !d.join("summary.json").exists(), "{name}");
        assert_eq!(rows(&d).len(), 1, "{name}: nothing was re-run or appended");
    }
}
