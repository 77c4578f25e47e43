//! Runs the standalone example (`examples/softmax_regression.rs`) as a test: it is the proof that
//! a training loop can use this crate alone, and it must train, not merely run.

#[path = "../examples/softmax_regression.rs"]
#[allow(dead_code)]
mod example;

#[test]
fn softmax_regression_example_trains_every_rule_on_its_budget() {
    let runs = example::run_all().expect("the example trains without errors");
    let by = |name: &str| runs.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no run `{name}`"));
    // 20 epochs of 20,000 samples; the hard rules warm up 1 epoch, anneal 2, and keep half of
    // the other 17: 3 * 20,000 + 17 * 10,000.
    assert_eq!(by("full data").used, 400_000);
    for name in ["uniform random", "epsilon-greedy", "ucb"] {
        assert_eq!(by(name).used, 230_000, "{name}");
    }
    // InfoBatch (drop probability 0.5, the last 3 epochs annealed) drops at most half of each
    // pruned epoch, and does drop some.
    let ib = by("infobatch").used;
    assert!(ib > 230_000 && ib < 400_000, "infobatch used {ib}");
    // Gaussian clusters with 5% label noise: a linear model learns them well above chance (20%),
    // and pruning half the samples costs at most a point here.
    let full = by("full data").accuracy;
    assert!(full > 0.88, "full data reached only {full}");
    for r in &runs {
        assert!((r.accuracy - full).abs() < 0.01, "{}: {} vs full data {full}", r.name, r.accuracy);
    }
}
