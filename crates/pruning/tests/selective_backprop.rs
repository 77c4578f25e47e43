//! Selective-Backprop's selector: the reference's percentile (scipy's `kind="rank"`) by hand, the
//! keep probability and its budget, determinism and resume, empty keep sets, bad input.

use dynaprune::{BackpropSelector, Policy, PruneError, Pruner, Schedule, SelectiveBackprop};

fn knob(r: Result<SelectiveBackprop, PruneError>) -> &'static str {
    match r {
        Err(PruneError::InvalidKnob { name, .. }) => name,
        other => panic!("expected InvalidKnob, got {other:?}"),
    }
}

/// A selector whose history holds exactly `values` (beta 0 keeps everything while filling it).
fn filled(values: &[f32], history: usize) -> BackpropSelector {
    let mut s = SelectiveBackprop::new(0.0).unwrap().with_history(history).unwrap().selector(1);
    assert_eq!(s.select(values).unwrap().len(), values.len());
    s
}

#[test]
fn percentile_is_scipys_rank_kind() {
    // scipy.stats.percentileofscore([1, 2, 2, 3], 2, kind="rank") = 62.5; of 1: 25; of 3: 100;
    // of 0.5: 0; of 2.5: 75.
    let s = filled(&[1.0, 2.0, 2.0, 3.0], 4);
    for (x, want) in [(2.0, 0.625), (1.0, 0.25), (3.0, 1.0), (0.5, 0.0), (2.5, 0.75)] {
        assert_eq!(s.percentile(x), want, "{x}");
    }
    // The history keeps the last 4: one more loss evicts the oldest (1.0).
    let mut s = s;
    s.select(&[5.0]).unwrap();
    assert_eq!(s.history().collect::<Vec<_>>(), [2.0, 2.0, 3.0, 5.0]);
    assert_eq!(s.percentile(2.0), 0.375);
    let empty = SelectiveBackprop::new(1.0).unwrap().selector(0);
    assert_eq!(empty.percentile(0.3), 1.0, "an empty history keeps the first sample for sure");
}

#[test]
fn keep_probability_is_percentile_to_the_beta_with_a_floor() {
    let s = SelectiveBackprop::new(2.0).unwrap().with_floor(0.1).unwrap().selector(0);
    assert_eq!(s.keep_probability(0.5), 0.25);
    assert_eq!(s.keep_probability(0.2), 0.1, "floor");
    assert_eq!(s.keep_probability(1.0), 1.0);
    // The budget: beta = f / (1 - f) keeps 1 / (1 + beta) = 1 - f in expectation.
    for (f, beta) in [(0.5, 1.0), (0.75, 3.0), (0.0, 0.0)] {
        let sb = SelectiveBackprop::for_prune_fraction(f).unwrap();
        assert_eq!(sb.beta(), beta);
        assert!((sb.prune_fraction() - f).abs() < 1e-12);
    }
    assert!((SelectiveBackprop::for_prune_fraction(0.3).unwrap().expected_keep() - 0.7).abs() < 1e-12);
}

#[test]
fn on_stationary_losses_it_keeps_the_expected_fraction_and_prefers_high_losses() {
    for f in [0.3, 0.5, 0.7] {
        let mut s = SelectiveBackprop::for_prune_fraction(f).unwrap().selector(42);
        let (mut kept, mut total, mut kept_loss, mut all_loss) = (0usize, 0usize, 0f64, 0f64);
        for b in 0..400u64 {
            // Deterministic, well-mixed losses in (0, 1).
            let losses: Vec<f32> =
                (0..128u64).map(|i| (dynaprune::rng::mix64(b * 128 + i) >> 40) as f32 / (1u64 << 24) as f32).collect();
            let k = s.select(&losses).unwrap();
            assert!(k.windows(2).all(|w| w[0] < w[1]), "ascending positions");
            kept += k.len();
            total += losses.len();
            kept_loss += k.iter().map(|&p| f64::from(losses[p])).sum::<f64>();
            all_loss += losses.iter().map(|&l| f64::from(l)).sum::<f64>();
        }
        let frac = kept as f64 / total as f64;
        assert!((frac - (1.0 - f)).abs() < 0.01, "f = {f}: kept {frac}");
        assert!(kept_loss / kept as f64 > all_loss / total as f64 + 0.05, "f = {f}: kept samples have higher losses");
    }
}

#[test]
fn same_seed_same_choices_and_a_restored_selector_continues_exactly() {
    let rule = SelectiveBackprop::new(1.5).unwrap().with_history(100).unwrap();
    let batch = |b: usize| -> Vec<f32> { (0..64).map(|i| ((b * 64 + i) * 7919 % 1000) as f32 / 100.0).collect() };
    let mut a = rule.selector(9);
    let straight: Vec<Vec<usize>> = (0..10).map(|b| a.select(&batch(b)).unwrap()).collect();
    let mut b = rule.selector(9);
    for (i, kept) in straight.iter().enumerate().take(5) {
        assert_eq!(&b.select(&batch(i)).unwrap(), kept);
    }
    let bytes = b.to_bytes();
    let mut c = rule.selector(9);
    c.restore(&bytes).unwrap();
    assert_eq!(c, b);
    for (i, kept) in straight.iter().enumerate().skip(5) {
        assert_eq!(&c.select(&batch(i)).unwrap(), kept, "batch {i} after restore");
    }
    let mut other = rule.selector(10);
    let differs = (0..10).any(|i| other.select(&batch(i)).unwrap() != straight[i]);
    assert!(differs, "another seed draws differently");
}

#[test]
fn an_empty_keep_set_is_a_valid_answer() {
    // A huge exponent and no floor keep (almost) nothing: the batch's candidates were still seen.
    let mut s = SelectiveBackprop::new(1e9).unwrap().selector(0);
    s.select(&[1.0; 64]).unwrap();
    let kept = s.select(&[0.5; 64]).unwrap();
    assert!(kept.is_empty(), "{kept:?}");
    assert_eq!((s.batches(), s.history().len()), (2, 128));
    assert!(s.select(&[]).unwrap().is_empty(), "an empty batch is allowed too");
}

#[test]
fn as_a_policy_it_plans_every_sample() {
    let mut p = Pruner::builder(50)
        .policy(SelectiveBackprop::for_prune_fraction(0.5).unwrap())
        .schedule(Schedule::new(3))
        .seed(1)
        .build()
        .unwrap();
    for e in 0..3 {
        let plan = p.plan(e).unwrap();
        let mut idx = plan.indices().to_vec();
        idx.sort_unstable();
        assert_eq!(idx, (0..50).collect::<Vec<_>>(), "epoch {e}: every sample is a candidate");
    }
    let rule = dynaprune::catalog::rule("selective-backprop").unwrap();
    assert!(rule.batch_level && rule.is_dynamic() && !rule.score_based);
}

#[test]
fn bad_input_is_named() {
    for beta in [-1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(knob(SelectiveBackprop::new(beta)), "sb_beta", "{beta}");
    }
    assert_eq!(knob(SelectiveBackprop::for_prune_fraction(1.0)), "prune_fraction");
    assert_eq!(knob(SelectiveBackprop::for_prune_fraction(-0.1)), "prune_fraction");
    assert_eq!(knob(SelectiveBackprop::new(1.0).unwrap().with_history(0)), "sb_history");
    for floor in [-0.1, 1.5, f64::NAN] {
        assert_eq!(knob(SelectiveBackprop::new(1.0).unwrap().with_floor(floor)), "sb_floor", "{floor}");
    }
    let mut s = SelectiveBackprop::new(1.0).unwrap().with_history(4).unwrap().selector(0);
    assert!(matches!(s.select(&[0.1, f32::NAN]), Err(PruneError::NonFinite { index: 1, .. })));
    assert_eq!((s.batches(), s.history().len()), (0, 0), "nothing changed");
    let good = filled(&[1.0, 2.0], 4).to_bytes();
    for (bytes, why) in [
        (b"nonsense".to_vec(), "magic"),
        (good[..12].to_vec(), "truncated"),
        (good[..good.len() - 1].to_vec(), "bytes"),
    ] {
        match s.restore(&bytes) {
            Err(PruneError::BadState(m)) => assert!(m.contains(why), "{why}: {m}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    // A history longer than this selector's.
    let long = filled(&[1.0; 8], 8).to_bytes();
    assert!(matches!(s.restore(&long), Err(PruneError::BadState(_))));
}
