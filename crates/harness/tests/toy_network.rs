//! The user's sentence, executable: "swapping the model means editing the harness". A network
//! defined here, in a test file, is registered with the harness and trained for one epoch on
//! synthetic data through the real training loop (data, per-sample loss, pruner, optimizer,
//! evaluation, checkpoint, summary), with a dynamic pruning rule.

use std::sync::Once;

use candle_core::{Device, Tensor};
use clap::Parser;
use dynaprune_harness::config::TrainArgs;
use dynaprune_harness::models::{self, BuildSpec, Inputs, ModelEntry};
use dynaprune_harness::run::{train, Outcome};
use dynaprune_model::layers::Linear;
use dynaprune_model::{Mode, Network, Param};

/// Softmax regression on the average of each 4x4 block of every channel: one linear layer.
#[derive(Debug)]
struct Toy {
    head: Linear,
    params: Vec<Param>,
    device: Device,
    inputs: usize,
    classes: usize,
}

impl Network for Toy {
    fn architecture(&self) -> &str {
        "toy"
    }
    fn forward_with_features(&self, x: &Tensor, mode: Mode) -> dynaprune_model::Result<(Tensor, Tensor)> {
        let features = x.avg_pool2d(4)?.flatten_from(1)?;
        let logits = self.head.forward(&features)?;
        Ok(if mode == Mode::Eval { (features.detach(), logits.detach()) } else { (features, logits) })
    }
    fn params(&self) -> &[Param] {
        &self.params
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn forward_macs(&self, _h: usize, _w: usize) -> u64 {
        (self.inputs * self.classes) as u64
    }
}

fn build(s: &BuildSpec) -> anyhow::Result<Box<dyn Network>> {
    let inputs = s.channels * (s.height / 4) * (s.width / 4);
    let mut params = Vec::new();
    let head = Linear::new(inputs, s.classes, s.seed, "head", s.dtype, &s.device, &mut params)?;
    Ok(Box::new(Toy { head, params, device: s.device.clone(), inputs, classes: s.classes }))
}

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        models::register(ModelEntry {
            name: "toy",
            help: "softmax regression on 4x4 block means (defined in a test)",
            inputs: Inputs { channels: Some(1), min_size: 8 },
            build,
        })
        .unwrap()
    });
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

fn args(out: &std::path::Path, extra: &[&str]) -> TrainArgs {
    let mut v = vec!["dynaprune".to_string(), "--out".into(), out.display().to_string()];
    v.extend(["--model", "toy", "--epochs", "1", "--progress", "plain"].iter().map(|s| s.to_string()));
    v.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(v).args
}

#[test]
fn a_network_defined_in_a_test_trains_through_the_harness() {
    register();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("toy");
    let extra = ["--dataset", "synthetic", "--policy", "random", "--prune-fraction", "0.5", "--lr", "0.5"];
    let Outcome::Done(s) = train(args(&out, &extra)).unwrap() else { panic!("stopped") };
    assert_eq!(s.model, "toy");
    assert_eq!(s.samples, 1024, "half of the 2048 synthetic samples");
    // Four balanced classes: chance is 25%; one epoch of softmax regression learns far more.
    assert!(s.final_test_acc > 0.5, "test accuracy {}", s.final_test_acc);
    let ck = std::fs::read(out.join("checkpoint/model.safetensors")).unwrap();
    let text = String::from_utf8_lossy(&ck[..ck.len().min(4096)]).into_owned();
    assert!(text.contains("\"dynaprune.architecture\":\"toy\""), "the checkpoint names its architecture");
    assert!(text.contains("param.head.weight"));
}

#[test]
fn a_registered_network_refuses_data_of_another_shape_before_training() {
    register();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("toy-rgb");
    let e = format!("{:#}", train(args(&out, &["--dataset", "synthetic-cifar"])).unwrap_err());
    assert!(e.contains("--model toy takes 1-channel images") && e.contains("3 channels"), "{e}");
    assert!(!out.join("config.json").exists(), "refused before anything was written");
    assert!(models::register(ModelEntry { name: "toy", help: "again", inputs: Inputs::ANY, build })
        .unwrap_err()
        .to_string()
        .contains("already registered"));
}
