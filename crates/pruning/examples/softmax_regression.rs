//! A complete training loop that depends on `dynaprune` alone: multinomial logistic regression in
//! plain Rust (no tensor library) on generated data, trained with full data and with four dynamic
//! pruning rules at `prune_fraction = 0.5`. Prints test accuracy and how many samples each run
//! back-propagated.
//!
//! ```text
//! cargo run --release -p dynaprune --example softmax_regression
//! ```

use dynaprune::{EpsilonGreedy, FullData, InfoBatch, Policy, Pruner, Schedule, Ucb, UniformRandom};
use rand::Rng as _;

const DIM: usize = 16;
const CLASSES: usize = 5;
const EPOCHS: usize = 20;
const BATCH: usize = 32;

struct Data {
    x: Vec<[f32; DIM]>,
    y: Vec<usize>,
}

/// Gaussian class clusters of varying spread, with 5% label noise: some samples are easy, some
/// hard, some wrong, which is what makes loss-based selection interesting.
fn generate(n: usize, seed: u64) -> Data {
    let mut rng = dynaprune::rng::stream(seed, "data", 0);
    let mut centres = [[0f32; DIM]; CLASSES];
    let mut crng = dynaprune::rng::stream(7, "centres", 0);
    for c in centres.iter_mut() {
        for v in c.iter_mut() {
            *v = crng.random_range(-1.0..1.0);
        }
    }
    let gauss = move |rng: &mut dynaprune::rng::Rng| -> f32 {
        // Box-Muller.
        let u1: f32 = rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    };
    let (mut x, mut y) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let c = rng.random_range(0..CLASSES);
        let spread = if rng.random::<f32>() < 0.2 { 1.2 } else { 0.4 };
        let mut v = [0f32; DIM];
        for (d, vd) in v.iter_mut().enumerate() {
            *vd = centres[c][d] + spread * gauss(&mut rng);
        }
        let label = if rng.random::<f32>() < 0.05 { rng.random_range(0..CLASSES) } else { c };
        x.push(v);
        y.push(label);
    }
    Data { x, y }
}

struct Model {
    w: [[f32; DIM]; CLASSES],
    b: [f32; CLASSES],
}

impl Model {
    fn probs(&self, x: &[f32; DIM]) -> [f32; CLASSES] {
        let z: [f32; CLASSES] =
            std::array::from_fn(|c| self.b[c] + self.w[c].iter().zip(x).map(|(w, x)| w * x).sum::<f32>());
        let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = z.iter().map(|v| (v - m).exp()).sum();
        z.map(|v| (v - m).exp() / s)
    }

    /// One SGD step on a weighted batch; returns each sample's cross-entropy loss.
    fn step(&mut self, data: &Data, idx: &[usize], weights: Option<&[f32]>, lr: f32) -> Vec<f32> {
        let mut gw = [[0f32; DIM]; CLASSES];
        let mut gb = [0f32; CLASSES];
        let mut losses = Vec::with_capacity(idx.len());
        for (k, &i) in idx.iter().enumerate() {
            let p = self.probs(&data.x[i]);
            let y = data.y[i];
            losses.push(-p[y].max(1e-12).ln());
            let w = weights.map_or(1.0, |w| w[k]);
            for c in 0..CLASSES {
                let g = w * (p[c] - if c == y { 1.0 } else { 0.0 });
                gb[c] += g;
                for (gw, x) in gw[c].iter_mut().zip(&data.x[i]) {
                    *gw += g * x;
                }
            }
        }
        let scale = lr / idx.len() as f32;
        for ((w, b), (gw, gb)) in self.w.iter_mut().zip(&mut self.b).zip(gw.iter().zip(&gb)) {
            *b -= scale * gb;
            for (w, g) in w.iter_mut().zip(gw) {
                *w -= scale * g;
            }
        }
        losses
    }

    fn accuracy(&self, data: &Data) -> f64 {
        let correct = data
            .x
            .iter()
            .zip(&data.y)
            .filter(|(x, &y)| {
                let p = self.probs(x);
                (0..CLASSES).max_by(|&a, &b| p[a].total_cmp(&p[b])) == Some(y)
            })
            .count();
        correct as f64 / data.x.len() as f64
    }
}

/// What one run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The rule.
    pub name: &'static str,
    /// Test accuracy.
    pub accuracy: f64,
    /// Samples back-propagated over the run.
    pub used: usize,
}

fn train(
    name: &'static str,
    policy: Box<dyn Policy>,
    schedule: Schedule,
    train: &Data,
    test: &Data,
) -> Result<RunResult, dynaprune::PruneError> {
    let mut model = Model { w: [[0.0; DIM]; CLASSES], b: [0.0; CLASSES] };
    let mut pruner = Pruner::builder(train.x.len()).boxed_policy(policy).schedule(schedule).seed(1).build()?;
    let mut used = 0usize;
    for epoch in 0..EPOCHS {
        let lr = 0.5 * (1.0 + (std::f32::consts::PI * epoch as f32 / EPOCHS as f32).cos()) / 2.0 + 0.01;
        let plan = pruner.plan(epoch)?;
        used += plan.len();
        for batch in plan.batches(BATCH) {
            let losses = model.step(train, batch.indices, batch.weights, lr);
            pruner.observe(batch.indices, &losses)?;
        }
    }
    let full = EPOCHS * train.x.len();
    let accuracy = model.accuracy(test);
    println!(
        "{name:<16} test accuracy {:.2}%   samples back-propagated {used:>7} ({:.0}% of full data)",
        100.0 * accuracy,
        100.0 * used as f64 / full as f64
    );
    Ok(RunResult { name, accuracy, used })
}

pub fn main() -> Result<(), dynaprune::PruneError> {
    run_all().map(|_| ())
}

/// Trains every rule and returns what each reported.
pub fn run_all() -> Result<Vec<RunResult>, dynaprune::PruneError> {
    let (train_set, test_set) = (generate(20_000, 1), generate(5_000, 2));
    let pf = 0.5;
    let sched = Schedule::new(EPOCHS).warmup(1).anneal(2);
    let runs: Vec<(&str, Box<dyn Policy>, Schedule)> = vec![
        ("full data", Box::new(FullData), Schedule::new(EPOCHS)),
        ("uniform random", Box::new(UniformRandom::new(pf)?), sched),
        ("epsilon-greedy", Box::new(EpsilonGreedy::builder().prune_fraction(pf).epsilon(0.2).build()?), sched),
        ("ucb", Box::new(Ucb::builder().prune_fraction(pf).c(1.0).build()?), sched),
        (
            "infobatch",
            Box::new(InfoBatch::from_drop_probability(pf)?),
            Schedule::new(EPOCHS).anneal_fraction(1.0 - InfoBatch::DEFAULT_DELTA)?,
        ),
    ];
    runs.into_iter().map(|(name, policy, schedule)| train(name, policy, schedule, &train_set, &test_set)).collect()
}
