//! A real crash: the `dynaprune` binary is killed with SIGKILL in the middle of an epoch, then
//! `--resume` must finish with exactly the weights of an uninterrupted run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const FLAGS: [&str; 20] = [
    "train",
    "--dataset",
    "synthetic",
    "--max-train-samples",
    "2048",
    "--max-test-samples",
    "128",
    "--batch-size",
    "32",
    "--epochs",
    "3",
    "--lr",
    "0.05",
    "--policy",
    "ucb",
    "--progress",
    "plain",
    "--threads",
    "2",
    "--eval-every=1",
];

fn run(out: &Path, resume: bool) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dynaprune"));
    c.args(FLAGS).arg("--out").arg(out);
    if resume {
        c.arg("--resume");
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn epochs_done(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("epochs.csv")).map_or(0, |s| s.lines().count().saturating_sub(1))
}

/// Every tensor of the final checkpoint (weights, BatchNorm statistics, optimizer momenta), as
/// raw bits.
fn final_state(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let t =
        candle_core::safetensors::load(dir.join("checkpoint/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let mut v: Vec<(String, Vec<u32>)> = t
        .into_iter()
        .map(|(k, x)| {
            let bits = x.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
            (k, bits.into_iter().map(f32::to_bits).collect())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, killed) = (tmp.path().join("straight"), tmp.path().join("killed"));
    run(&straight, false);
    // How long an epoch takes here, to aim the kill at the middle of epoch 1.
    let rows = std::fs::read_to_string(straight.join("epochs.csv")).unwrap();
    let mut rd = csv::Reader::from_reader(rows.as_bytes());
    let col = rd.headers().unwrap().iter().position(|h| h == "train_s").unwrap();
    // Epoch 1 is the first pruned (half-length) epoch.
    let epoch_s: f64 = rd.records().nth(1).unwrap().unwrap()[col].parse().unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_dynaprune"))
        .args(FLAGS)
        .arg("--out")
        .arg(&killed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while epochs_done(&killed) < 1 {
        assert!(start.elapsed() < Duration::from_secs(300), "epoch 0 never finished");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_secs_f64(epoch_s * 0.3));
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no cleanup
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!killed.join("summary.json").exists());
    let at_kill = epochs_done(&killed);
    eprintln!("killed after {at_kill} complete epochs (aimed at the middle of epoch 1; an epoch takes {epoch_s:.2}s)");
    assert!(at_kill < 3, "killed before the end ({at_kill} epochs done)");

    run(&killed, true);
    assert_eq!(epochs_done(&killed), 3);
    let (a, b) = (final_state(&straight), final_state(&killed));
    assert_eq!(a.len(), b.len());
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        assert!(va == vb, "tensor {ka} differs after kill + resume (killed after {at_kill} epochs)");
    }
    // The recorded history agrees too, except for the timing columns.
    let sa: serde_json::Value = serde_json::from_slice(&std::fs::read(straight.join("summary.json")).unwrap()).unwrap();
    let sb: serde_json::Value = serde_json::from_slice(&std::fs::read(killed.join("summary.json")).unwrap()).unwrap();
    for k in ["final_test_acc", "final_test_loss", "samples", "selection_histogram"] {
        assert_eq!(sa[k], sb[k], "{k}");
    }
}
