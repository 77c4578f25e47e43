//! The plans the Python bindings must reproduce: a scripted run of every rule, written as JSON to
//! `crates/pruning-py/tests/golden/plans.json`. This test checks that the Rust crate still
//! produces that file byte for byte; `crates/pruning-py/tests/test_parity.py` replays the same
//! script through the bindings and checks they produce the same plans. Together: same seed, same
//! plans, from Rust and from Python.
//!
//! After an intended change of the plans, regenerate with
//! `DYNAPRUNE_BLESS=1 cargo test -p dynaprune --test python_parity` and commit the file.

use std::fmt::Write as _;
use std::path::PathBuf;

use dynaprune::{
    EpsilonGreedy, FullData, InfoBatch, InfoBatchRate, Kakurenbo, Keep, Policy, Pruner, Rs2, Schedule, Seta,
    SetaBudget, Staleness, StaticRandom, StaticScores, Ucb, UniformRandom,
};

const N: usize = 200;
const EPOCHS: usize = 6;
const SEED: u64 = 11;
const BATCH: usize = 64;

/// The scripted loss of sample `i` at epoch `e` (exact in f32, the same in NumPy).
fn loss(i: usize, e: usize) -> f32 {
    ((i * 37 + e * 101 + 13) % 97) as f32 / 10.0
}

/// The scripted static score of sample `i`.
fn score(i: usize) -> f32 {
    ((i * 7919) % 1000) as f32 / 1000.0
}

fn cases() -> Vec<(&'static str, Box<dyn Policy>, Schedule)> {
    let s = Schedule::new(EPOCHS).warmup(1);
    let scores: Vec<f32> = (0..N).map(score).collect();
    vec![
        ("full", Box::new(FullData), s),
        ("random", Box::new(UniformRandom::new(0.5).unwrap()), s),
        ("epsilon-greedy", Box::new(EpsilonGreedy::builder().prune_fraction(0.5).epsilon(0.2).build().unwrap()), s),
        (
            "epsilon-greedy-plain",
            Box::new(
                EpsilonGreedy::builder()
                    .prune_fraction(0.5)
                    .epsilon(0.2)
                    .build()
                    .unwrap()
                    .with_staleness(Staleness::Off)
                    .unwrap(),
            ),
            s,
        ),
        ("ucb", Box::new(Ucb::builder().prune_fraction(0.5).c(1.0).build().unwrap()), s),
        (
            "ucb-count-bonus",
            Box::new(
                Ucb::builder()
                    .prune_fraction(0.3)
                    .c(1.0)
                    .build()
                    .unwrap()
                    .with_staleness(Staleness::count_bonus(0.5).unwrap())
                    .unwrap(),
            ),
            s,
        ),
        ("infobatch", Box::new(InfoBatch::from_drop_probability(0.5).unwrap()), s.anneal(1)),
        (
            "infobatch-target",
            Box::new(
                InfoBatch::from_rate(InfoBatchRate::TargetPruneFraction {
                    prune_fraction: 0.3,
                    max_drop_probability: 0.9,
                })
                .unwrap(),
            ),
            s,
        ),
        ("rs2", Box::new(Rs2::new(0.7).unwrap()), s),
        ("kakurenbo", Box::new(Kakurenbo::new(0.3).unwrap()), s),
        ("seta", Box::new(Seta::new(0.5).unwrap()), s),
        (
            "seta-reference",
            Box::new(
                Seta::new(0.2)
                    .unwrap()
                    .with_groups(4)
                    .unwrap()
                    .with_window_scale(0.5)
                    .unwrap()
                    .with_delta(0.8)
                    .unwrap()
                    .with_budget(SetaBudget::Reference),
            ),
            s,
        ),
        ("static-scores", Box::new(StaticScores::new(scores, Keep::Highest, 0.5).unwrap()), s),
        ("static-random", Box::new(StaticRandom::new(0.4).unwrap()), s),
    ]
}

fn nums<T: std::fmt::Display>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

/// The whole script's plans as JSON (one line per plan, stable formatting).
fn trace() -> String {
    let mut out = format!("{{\"n\": {N}, \"epochs\": {EPOCHS}, \"seed\": {SEED}, \"batch\": {BATCH}, \"runs\": {{\n");
    let cases = cases();
    let count = cases.len();
    for (k, (name, policy, schedule)) in cases.into_iter().enumerate() {
        let kakurenbo = policy.name() == "kakurenbo";
        let mut p = Pruner::builder(N).boxed_policy(policy).schedule(schedule).seed(SEED).build().unwrap();
        writeln!(out, "\"{name}\": {{\"plans\": [").unwrap();
        for e in 0..EPOCHS {
            let plan = p.plan(e).unwrap();
            let weights = match plan.weights() {
                None => "null".to_string(),
                Some(w) => format!("[{}]", nums(w.iter().map(|&x| x as f64))),
            };
            let sep = if e + 1 < EPOCHS { "," } else { "" };
            writeln!(
                out,
                "  {{\"epoch\": {e}, \"phase\": \"{}\", \"lr_factor\": {}, \"indices\": [{}], \"weights\": {weights}}}{sep}",
                plan.phase().as_str(),
                plan.lr_factor(),
                nums(plan.indices().iter().copied())
            )
            .unwrap();
            for b in plan.batches(BATCH) {
                let l: Vec<f32> = b.indices.iter().map(|&i| loss(i, e)).collect();
                if kakurenbo {
                    let correct: Vec<bool> = b.indices.iter().map(|&i| i % 3 != 0).collect();
                    let conf: Vec<f32> = b.indices.iter().map(|&i| ((i * 13) % 50 + 50) as f32 / 100.0).collect();
                    p.observe_predictions(b.indices, &l, &correct, &conf).unwrap();
                } else {
                    p.observe(b.indices, &l).unwrap();
                }
            }
        }
        let sep = if k + 1 < count { "," } else { "" };
        writeln!(out, "], \"selection_counts\": [{}]}}{sep}", nums(p.selection_counts())).unwrap();
    }
    out.push_str("}}\n");
    out
}

#[test]
fn python_golden_plans_are_what_the_crate_plans() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pruning-py/tests/golden/plans.json");
    let now = trace();
    if std::env::var_os("DYNAPRUNE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate with DYNAPRUNE_BLESS=1)", path.display()));
    assert!(
        golden == now,
        "the crate's plans differ from {}: if the change is intended, regenerate it with \
         DYNAPRUNE_BLESS=1 cargo test -p dynaprune --test python_parity and say so in the commit",
        path.display()
    );
    // The script exercises what it claims: weighted plans, a learning-rate factor, pruned epochs.
    assert!(now.contains("\"weights\": ["), "InfoBatch should produce weighted plans");
    assert!(now.contains("\"lr_factor\": 1.4"), "KAKURENBO should scale the learning rate");
}
