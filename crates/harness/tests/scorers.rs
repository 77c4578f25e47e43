//! Static score *values* on tiny cases computed by hand: forgetting events, GraNd's last-layer
//! norm (against hand numbers and against autograd), and full GraNd against its last-layer part.

use candle_core::{Device, Tensor, Var};
use clap::Parser;
use dynaprune_harness::config::{ScorerArg, TrainArgs};
use dynaprune_harness::datasets;
use dynaprune_harness::run::engine;
use dynaprune_harness::scoring::{self as scorers, ForgettingCounter};

#[test]
fn forgetting_events_counted_by_hand() {
    // Presentations (one per epoch) of four samples:
    //   0: right, wrong, right, wrong -> forgotten twice
    //   1: never right                -> never learned: infinity
    //   2: always right               -> 0
    //   3: wrong, right, wrong, right -> forgotten once (wrong -> right is learning, not forgetting)
    let seq = [
        [true, false, true, false],
        [false, false, false, false],
        [true, true, true, true],
        [false, true, false, true],
    ];
    let mut c = ForgettingCounter::new(4);
    #[allow(clippy::needless_range_loop)] // `epoch` indexes the inner arrays, in presentation order
    for epoch in 0..4 {
        // Presented in a different order each epoch, as a shuffled run would.
        let order: Vec<usize> = if epoch % 2 == 0 { vec![0, 1, 2, 3] } else { vec![3, 1, 0, 2] };
        let correct: Vec<bool> = order.iter().map(|&i| seq[i][epoch]).collect();
        c.observe(&order, &correct);
    }
    assert_eq!(c.scores(), vec![2.0, f32::INFINITY, 0.0, 1.0]);
}

/// Features, logits and labels of the hand case.
fn hand_case() -> (Tensor, Tensor, Tensor) {
    let h = Tensor::new(&[[1.0f32, 2.0], [0.0, -1.0]], &Device::Cpu).unwrap();
    let logits = Tensor::new(&[[2.0f32, -1.0, 0.5], [0.1, 0.2, 0.3]], &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
    (h, logits, labels)
}

#[test]
fn grand_last_layer_matches_hand_computation() {
    // import math
    // def sm(z): m = max(z); e = [math.exp(v - m) for v in z]; return [v / sum(e) for v in e]
    // for h, l, y in [([1, 2], [2, -1, .5], 0), ([0, -1], [.1, .2, .3], 2)]:
    //     p = sm(l); err = math.sqrt(sum((p[k] - (k == y)) ** 2 for k in range(3)))
    //     print(err * math.sqrt(sum(v * v for v in h) + 1))
    // -> 0.6850918765014291, 1.09655753219925
    let (h, logits, labels) = hand_case();
    let got = scorers::last_layer_grad_norm(&h, &logits, &labels).unwrap().to_vec1::<f32>().unwrap();
    for (g, want) in got.iter().zip([0.685_091_9f32, 1.096_557_5]) {
        assert!((g - want).abs() < 1e-6, "{got:?}");
    }
}

#[test]
fn grand_last_layer_is_the_exact_gradient_norm_of_a_linear_head() {
    // Per-sample gradient of cross-entropy w.r.t. the weights and bias of `logits = h W^T + b`,
    // by autograd, against the closed form the scorer uses.
    let (h, _, labels) = hand_case();
    let w = Var::from_tensor(&Tensor::new(&[[0.3f32, -0.2], [0.1, 0.4], [-0.5, 0.25]], &Device::Cpu).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::new(&[0.05f32, -0.1, 0.2], &Device::Cpu).unwrap()).unwrap();
    let logits = h.matmul(&w.as_tensor().t().unwrap()).unwrap().broadcast_add(b.as_tensor()).unwrap();
    let closed = scorers::last_layer_grad_norm(&h, &logits, &labels).unwrap().to_vec1::<f32>().unwrap();
    for (i, &closed) in closed.iter().enumerate() {
        let li = logits.narrow(0, i, 1).unwrap();
        let yi = labels.narrow(0, i, 1).unwrap();
        let loss = dynaprune_model::loss::cross_entropy_per_sample(&li, &yi, 0.0).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let sq = |v: &Var| g.get(v).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let norm = (sq(&w) + sq(&b)).sqrt();
        assert!((norm - closed).abs() < 1e-5, "sample {i}: autograd {norm} vs closed form {closed}");
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

#[test]
fn full_grand_contains_its_last_layer_part() {
    // The full-parameter gradient includes the last layer's, so its norm is at least the
    // last-layer norm, sample by sample, for the same initialisation (same seed, one model).
    let args = Cli::parse_from([
        "dynaprune",
        "--dataset",
        "synthetic",
        "--max-train-samples",
        "24",
        "--max-test-samples",
        "8",
        "--width",
        "0.5",
        "--scorer-models",
        "1",
        "--seed",
        "3",
    ])
    .args;
    let s = args.resolve().unwrap();
    let env = engine::Env::new(datasets::load(&s.data, s.run.seed).unwrap(), s.data.augment, s.run.seed, &Device::Cpu)
        .unwrap();
    let (full, info) = scorers::compute(ScorerArg::Grand, &s, &env).unwrap();
    let (last, _) = scorers::compute(ScorerArg::GrandLastLayer, &s, &env).unwrap();
    assert_eq!((full.len(), info.samples, info.models), (24, 24, 1));
    let mut strictly = 0;
    for (i, (f, l)) in full.iter().zip(&last).enumerate() {
        assert!(f.is_finite() && *l > 0.0, "sample {i}: {f} {l}");
        assert!(*f >= l * (1.0 - 1e-4), "sample {i}: full {f} < last layer {l}");
        strictly += usize::from(*f > l * 1.01);
    }
    assert!(strictly > 0, "the other layers contribute to the full gradient");
}
