//! Behavioural tests of each policy and of the pruner's schedule, accounting and state.

use dynaprune::*;
use std::collections::HashSet;

/// A buffer where sample i was observed once with value `values[i]`.
fn buffer_with(values: &[f32]) -> EmaBuffer {
    let mut b = EmaBuffer::new(values.len(), 0.9).unwrap();
    let idx: Vec<usize> = (0..values.len()).collect();
    b.observe(0, &idx, values).unwrap();
    b
}

fn ctx(epoch: usize) -> SelectContext {
    SelectContext::new(epoch, 10)
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

#[test]
fn epsilon_zero_is_pure_greedy() {
    let values: Vec<f32> = (0..100).map(|i| ((i * 37) % 100) as f32).collect();
    let b = buffer_with(&values);
    let p = EpsilonGreedy::builder().prune_fraction(0.7).epsilon(0.0).build().unwrap();
    let sel = p.select(&ctx(1), &b, &mut rng::stream(1, "t", 0)).unwrap();
    // The 30 highest values are 70..99.
    let got: HashSet<usize> = sel.indices.iter().copied().collect();
    let want: HashSet<usize> = (0..100).filter(|&i| values[i] >= 70.0).collect();
    assert_eq!(got, want);
}

#[test]
fn epsilon_one_is_uniform() {
    // With epsilon = 1 the selection ignores scores: over many seeds every sample, including the
    // lowest-scoring ones, is kept with frequency close to the keep rate.
    let n = 50;
    let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let b = buffer_with(&values);
    let p = EpsilonGreedy::builder().prune_fraction(0.6).epsilon(1.0).build().unwrap();
    let trials = 4000;
    let mut counts = vec![0u32; n];
    for t in 0..trials {
        let sel = p.select(&ctx(1), &b, &mut rng::stream(7, "t", t)).unwrap();
        assert_eq!(sel.indices.len(), 20);
        for i in sel.indices {
            counts[i] += 1;
        }
    }
    let expect = trials as f64 * 0.4;
    let sd = (trials as f64 * 0.4 * 0.6).sqrt();
    for (i, &c) in counts.iter().enumerate() {
        assert!((c as f64 - expect).abs() < 5.0 * sd, "sample {i}: {c} vs {expect}");
    }
    // The greedy half of epsilon = 0.5 always contains the top scores.
    let half = EpsilonGreedy::builder().prune_fraction(0.6).epsilon(0.5).build().unwrap();
    let sel: HashSet<usize> =
        half.select(&ctx(1), &b, &mut rng::stream(7, "t", 0)).unwrap().indices.into_iter().collect();
    assert!((40..50).all(|i| sel.contains(&i)));
}

#[test]
fn epsilon_decay_schedules() {
    let p = EpsilonGreedy::builder()
        .prune_fraction(0.5)
        .epsilon(0.8)
        .build()
        .unwrap()
        .with_decay(EpsilonDecay::Exponential { rate: 0.5, min: 0.1 })
        .unwrap();
    assert_eq!(p.epsilon_at(0, 10), 0.8);
    assert_eq!(p.epsilon_at(1, 10), 0.4);
    assert_eq!(p.epsilon_at(5, 10), 0.1);
    let l = EpsilonGreedy::builder()
        .prune_fraction(0.5)
        .epsilon(1.0)
        .build()
        .unwrap()
        .with_decay(EpsilonDecay::Linear { to: 0.0 })
        .unwrap();
    assert_eq!(l.epsilon_at(0, 11), 1.0);
    assert!((l.epsilon_at(5, 11) - 0.5).abs() < 1e-12);
    assert!(EpsilonGreedy::builder()
        .prune_fraction(0.5)
        .epsilon(0.2)
        .build()
        .unwrap()
        .with_decay(EpsilonDecay::Exponential { rate: 1.5, min: 0.0 })
        .is_err());
}

#[test]
fn ucb_prefers_high_variance_at_equal_mean() {
    // Samples 0..10 alternate 0 and 2 (mean ~1, high variance); 10..20 are always 1 (variance 0).
    let mut b = EmaBuffer::new(20, 0.5).unwrap();
    for e in 0..20 {
        let idx: Vec<usize> = (0..20).collect();
        let vals: Vec<f32> = (0..20)
            .map(|i| {
                if i < 10 {
                    if (e + i) % 2 == 0 {
                        0.0
                    } else {
                        2.0
                    }
                } else {
                    1.0
                }
            })
            .collect();
        b.observe(e, &idx, &vals).unwrap();
    }
    let sel = Ucb::builder()
        .prune_fraction(0.5)
        .c(1.0)
        .build()
        .unwrap()
        .select(&ctx(3), &b, &mut rng::stream(0, "t", 0))
        .unwrap();
    assert_eq!(sorted(sel.indices), (0..10).collect::<Vec<_>>());
    // With c = 0 it is greedy on the mean alone: the deterministic 1.0 samples win against
    // alternating samples whose EMA currently sits below 1.
    let mean = |i: usize| b.get(i).unwrap().mean;
    let sel0 = Ucb::builder()
        .prune_fraction(0.5)
        .c(0.0)
        .build()
        .unwrap()
        .select(&ctx(3), &b, &mut rng::stream(0, "t", 0))
        .unwrap();
    let min_kept = sel0.indices.iter().map(|&i| mean(i)).fold(f32::INFINITY, f32::min);
    let max_dropped = (0..20).filter(|i| !sel0.indices.contains(i)).map(mean).fold(f32::NEG_INFINITY, f32::max);
    assert!(min_kept >= max_dropped);
}

#[test]
fn ucb_takes_never_seen_samples_first() {
    let mut b = EmaBuffer::new(10, 0.9).unwrap();
    b.observe(0, &[0, 1, 2, 3, 4, 5, 6], &[9.0; 7]).unwrap();
    let sel = Ucb::builder()
        .prune_fraction(0.5)
        .c(1.0)
        .build()
        .unwrap()
        .select(&ctx(1), &b, &mut rng::stream(0, "t", 0))
        .unwrap();
    let got: HashSet<usize> = sel.indices.into_iter().collect();
    assert!(got.contains(&7) && got.contains(&8) && got.contains(&9));
    assert_eq!(got.len(), 5);
}

#[test]
fn infobatch_keeps_every_above_mean_sample_and_matches_theory() {
    let n = 10_000;
    // Scores 0..n-1: exactly half (0..5000) are below the mean (4999.5).
    let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let b = buffer_with(&values);
    let r = 0.3;
    let p = InfoBatch::from_drop_probability(r).unwrap().with_statistic(Statistic::Mean);
    let sel = p.select(&ctx(1), &b, &mut rng::stream(3, "t", 0)).unwrap();
    let w = sel.weights.clone().unwrap();
    let got: HashSet<usize> = sel.indices.iter().copied().collect();
    assert!((5000..n).all(|i| got.contains(&i)), "every above-mean sample is kept");
    for (k, &i) in sel.indices.iter().enumerate() {
        let expected = if i >= 5000 { 1.0 } else { 1.0 / (1.0 - r as f32) };
        assert_eq!(w[k], expected, "sample {i}");
    }
    // Theory: kept fraction = 1 - r * fraction_below = 1 - 0.3 * 0.5 = 0.85.
    assert_eq!(sel.indices.len(), 8500);
    // Every below-mean sample is dropped with probability r: check the marginal over seeds.
    let trials = 400;
    let mut kept_low = 0usize;
    for t in 0..trials {
        let s = p.select(&ctx(1), &b, &mut rng::stream(11, "t", t)).unwrap();
        kept_low += s.indices.iter().filter(|&&i| i == 17).count();
    }
    let f = kept_low as f64 / trials as f64;
    assert!((f - 0.7).abs() < 0.08, "marginal keep probability {f}");
}

#[test]
fn infobatch_target_mode_reports_capping() {
    let values: Vec<f32> = (0..100).map(|i| i as f32).collect();
    let b = buffer_with(&values);
    let ok =
        InfoBatch::from_rate(InfoBatchRate::TargetPruneFraction { prune_fraction: 0.25, max_drop_probability: 0.9 })
            .unwrap()
            .with_statistic(Statistic::Mean);
    let sel = ok.select(&ctx(1), &b, &mut rng::stream(0, "t", 0)).unwrap();
    assert_eq!(sel.indices.len(), 75);
    let note = |s: &Selection, k: &str| s.notes.iter().find(|(n, _)| n == k).unwrap().1;
    assert_eq!(note(&sel, "capped"), 0.0);
    assert!((note(&sel, "drop_probability") - 0.5).abs() < 1e-12);
    let capped =
        InfoBatch::from_rate(InfoBatchRate::TargetPruneFraction { prune_fraction: 0.6, max_drop_probability: 0.9 })
            .unwrap()
            .with_statistic(Statistic::Mean);
    let sel = capped.select(&ctx(1), &b, &mut rng::stream(0, "t", 0)).unwrap();
    assert_eq!(note(&sel, "capped"), 1.0);
    assert_eq!(note(&sel, "drop_probability"), 0.9);
    assert_eq!(sel.indices.len(), 55);
    assert!((note(&sel, "fraction_removed") - 0.45).abs() < 1e-12);
}

#[test]
fn static_scores_windows() {
    let scores: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let b = EmaBuffer::new(10, 0.9).unwrap();
    let sel = |keep| {
        StaticScores::new(scores.clone(), keep, 0.6)
            .unwrap()
            .select(&ctx(0), &b, &mut rng::stream(0, "t", 0))
            .unwrap()
            .indices
    };
    assert_eq!(sorted(sel(Keep::Highest)), vec![6, 7, 8, 9]);
    assert_eq!(sorted(sel(Keep::Lowest)), vec![0, 1, 2, 3]);
    assert_eq!(sorted(sel(Keep::Window { skip_fraction: 0.2 })), vec![4, 5, 6, 7]);
    assert!(StaticScores::new(scores.clone(), Keep::Window { skip_fraction: 0.7 }, 0.6).is_err());
    let mismatch = StaticScores::new(vec![1.0; 5], Keep::Highest, 0.5).unwrap();
    assert_eq!(
        mismatch.select(&ctx(0), &b, &mut rng::stream(0, "t", 0)).unwrap_err(),
        PruneError::ScoreCountMismatch { expected: 10, got: 5 }
    );
    assert!(matches!(StaticScores::new(vec![f32::NAN], Keep::Highest, 0.5), Err(PruneError::NonFinite { .. })));
    // +inf (never-learned in forgetting scores) ranks highest.
    let mut s = vec![0.0f32; 10];
    s[3] = f32::INFINITY;
    let p = StaticScores::new(s, Keep::Highest, 0.9).unwrap();
    assert_eq!(p.select(&ctx(0), &b, &mut rng::stream(0, "t", 0)).unwrap().indices, vec![3]);
}

#[test]
fn static_policies_select_once_and_keep_it() {
    let mut pr = Pruner::builder(100)
        .policy(StaticRandom::new(0.5).unwrap())
        .schedule(Schedule::new(5))
        .seed(9)
        .build()
        .unwrap();
    let first = sorted(pr.plan(0).unwrap().indices().to_vec());
    for e in 1..5 {
        pr.observe(&[0, 1], &[5.0, 6.0]).unwrap();
        let p = pr.plan(e).unwrap();
        assert_eq!(sorted(p.indices().to_vec()), first);
        assert_eq!(p.stats().overlap_with_previous, Some(1.0));
    }
}

#[test]
fn dynamic_random_changes_and_reuse_interval_holds() {
    let mut pr = Pruner::builder(1000)
        .policy(UniformRandom::new(0.5).unwrap())
        .schedule(Schedule::new(6).interval(2))
        .seed(1)
        .build()
        .unwrap();
    let p0 = pr.plan(0).unwrap();
    let p1 = pr.plan(1).unwrap();
    let p2 = pr.plan(2).unwrap();
    assert_eq!(p1.phase(), Phase::Reuse);
    assert_eq!(sorted(p0.indices().to_vec()), sorted(p1.indices().to_vec()));
    assert_ne!(p0.indices(), p1.indices(), "reused selections are reshuffled");
    let o = p2.stats().overlap_with_previous.unwrap();
    assert!((o - 0.5).abs() < 0.1, "a new random half overlaps about half: {o}");
}

#[test]
fn schedule_phases_and_accounting() {
    let mut pr = Pruner::builder(200)
        .policy(Ucb::builder().prune_fraction(0.75).c(1.0).build().unwrap())
        .schedule(Schedule::new(6).warmup(1).anneal(2))
        .build()
        .unwrap();
    let mut kept = Vec::new();
    for e in 0..6 {
        let p = pr.plan(e).unwrap();
        kept.push((p.phase(), p.len()));
        let losses: Vec<f32> = p.indices().iter().map(|&i| i as f32 / 200.0).collect();
        pr.observe(p.indices(), &losses).unwrap();
        // 1 - kept / n, written out: full-data epochs save nothing, UCB at 0.75 saves 75%.
        let want = if p.phase().is_full() { 0.0 } else { 0.75 };
        assert_eq!(p.stats().saving, want, "epoch {e}");
        if e == 1 {
            // The first selection ranks by the warm-up losses i / 200: the top quarter.
            let mut first: Vec<usize> = p.indices().to_vec();
            first.sort_unstable();
            assert_eq!(first, (150..200).collect::<Vec<_>>());
        }
    }
    assert_eq!(
        kept,
        vec![
            (Phase::Warmup, 200),
            (Phase::Select, 50),
            (Phase::Select, 50),
            (Phase::Select, 50),
            (Phase::Anneal, 200),
            (Phase::Anneal, 200)
        ]
    );
    assert_eq!(pr.epochs_planned(), 6);
    let counts = pr.selection_counts();
    assert_eq!(counts.iter().map(|&c| c as usize).sum::<usize>(), 3 * 200 + 3 * 50);
    // Every sample is in the 3 full-data epochs; the pruned counts add up to 3 epochs of 50.
    let pruned = pr.pruned_selection_counts();
    assert!(counts.iter().zip(pruned).all(|(&c, &p)| c == 3 + p), "selection counts = full epochs + pruned");
    assert_eq!(pruned.iter().map(|&c| c as usize).sum::<usize>(), 150);
    assert!(pruned[150..].iter().all(|&c| c >= 1), "the first selection's samples were counted");
    // With as many full as pruned epochs the two counts cannot be told apart: 1 full, 4 pruned.
    let mut pr = Pruner::builder(40)
        .policy(UniformRandom::new(0.5).unwrap())
        .schedule(Schedule::new(5).warmup(1))
        .build()
        .unwrap();
    for e in 0..5 {
        pr.plan(e).unwrap();
    }
    let (all, pruned) = (pr.selection_counts(), pr.pruned_selection_counts());
    assert!(all.iter().zip(pruned).all(|(&c, &p)| c == 1 + p), "1 full-data epoch + the pruned selections");
    assert_eq!(pruned.iter().map(|&c| c as usize).sum::<usize>(), 4 * 20);
}

#[test]
fn errors_are_typed() {
    assert!(matches!(UniformRandom::new(1.0), Err(PruneError::InvalidKnob { name: "prune_fraction", .. })));
    assert!(matches!(UniformRandom::new(f64::NAN), Err(PruneError::InvalidKnob { .. })));
    assert!(matches!(
        EpsilonGreedy::builder().prune_fraction(0.5).epsilon(1.5).build(),
        Err(PruneError::InvalidKnob { name: "epsilon", .. })
    ));
    assert!(matches!(
        Ucb::builder().prune_fraction(0.5).c(-1.0).build(),
        Err(PruneError::InvalidKnob { name: "ucb_c", .. })
    ));
    assert!(matches!(
        InfoBatch::from_drop_probability(1.0),
        Err(PruneError::InvalidKnob { name: "drop_probability", .. })
    ));
    assert_eq!(Pruner::builder(0).schedule(Schedule::new(1)).build().unwrap_err(), PruneError::EmptyDataset);
    assert!(matches!(Pruner::builder(5).build(), Err(PruneError::InvalidSchedule(_))));
    assert!(matches!(
        Pruner::builder(5).schedule(Schedule::new(3).warmup(2).anneal(2)).build(),
        Err(PruneError::InvalidSchedule(_))
    ));
    assert!(matches!(
        Pruner::builder(5).schedule(Schedule::new(3).interval(0)).build(),
        Err(PruneError::InvalidSchedule(_))
    ));
    let mut pr = Pruner::builder(5).schedule(Schedule::new(3)).build().unwrap();
    assert_eq!(pr.observe(&[5], &[1.0]).unwrap_err(), PruneError::IndexOutOfRange { index: 5, len: 5 });
    assert_eq!(pr.plan(3).unwrap_err(), PruneError::EpochOutOfRange { epoch: 3, epochs: 3 });
    pr.plan(1).unwrap();
    assert_eq!(pr.plan(1).unwrap_err(), PruneError::EpochOrder { epoch: 1, last: 1 });
    // A prune fraction that would keep nothing is an error, not an empty epoch.
    let mut tiny =
        Pruner::builder(2).policy(UniformRandom::new(0.8).unwrap()).schedule(Schedule::new(2)).build().unwrap();
    assert!(matches!(tiny.plan(0), Err(PruneError::InvalidKnob { name: "prune_fraction", .. })));
}

fn run(pr: &mut Pruner, epochs: std::ops::Range<usize>) -> Vec<Vec<usize>> {
    let mut plans = Vec::new();
    for e in epochs {
        let p = pr.plan(e).unwrap();
        for b in p.batches(16) {
            let losses: Vec<f32> = b.indices.iter().map(|&i| ((i * 31 + e * 7) % 13) as f32).collect();
            pr.observe(b.indices, &losses).unwrap();
        }
        plans.push(p.indices().to_vec());
    }
    plans
}

fn ucb_pruner() -> Pruner {
    Pruner::builder(300)
        .policy(Ucb::builder().prune_fraction(0.5).c(1.0).build().unwrap())
        .schedule(Schedule::new(8).warmup(1).interval(2).anneal(1))
        .seed(5)
        .build()
        .unwrap()
}

#[test]
fn resume_from_state_plans_the_same() {
    let mut whole = ucb_pruner();
    let all = run(&mut whole, 0..8);
    let mut first = ucb_pruner();
    let head = run(&mut first, 0..4);
    let bytes = first.state().to_bytes();
    let mut resumed = ucb_pruner();
    resumed.restore(PrunerState::from_bytes(&bytes).unwrap()).unwrap();
    let tail = run(&mut resumed, 4..8);
    assert_eq!([head, tail].concat(), all);
    assert_eq!(resumed.selection_counts(), whole.selection_counts());
}

#[test]
fn corrupt_state_is_rejected() {
    let mut pr = ucb_pruner();
    run(&mut pr, 0..2);
    let bytes = pr.state().to_bytes();
    for cut in [0, 3, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(PrunerState::from_bytes(&bytes[..cut]).is_err());
    }
    let mut flipped = bytes.clone();
    flipped[40] ^= 0xff;
    assert!(PrunerState::from_bytes(&flipped).is_err());
    let other =
        Pruner::builder(300).policy(UniformRandom::new(0.5).unwrap()).schedule(Schedule::new(8)).seed(5).build();
    let st = PrunerState::from_bytes(&bytes).unwrap();
    assert!(matches!(other.unwrap().restore(st), Err(PruneError::BadState(_))));
}

#[test]
fn weighted_mean_uses_batch_length() {
    let mut pr = Pruner::builder(4).schedule(Schedule::new(1)).build().unwrap();
    let p = pr.plan(0).unwrap();
    let b = p.batches(4).next().unwrap();
    assert_eq!(b.weighted_mean(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    let w = PlanBatch { indices: &[0, 1], weights: Some(&[2.0, 1.0]) };
    assert_eq!(w.weighted_mean(&[1.0, 1.0]), 1.5);
}

#[test]
fn the_hashes_are_the_published_functions() {
    // FNV-1a 64 test vectors (Fowler/Noll/Vo): "" and "a".
    assert_eq!(dynaprune::rng::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(dynaprune::rng::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    // SplitMix64's first output for state 0 (Vigna's reference splitmix64.c).
    assert_eq!(dynaprune::rng::mix64(0), 0xe220_a839_7b1d_cdaf);
}

#[test]
fn static_scores_for_another_dataset_size_are_rejected_when_the_pruner_is_built() {
    let p = dynaprune::StaticScores::new(vec![1.0; 4], dynaprune::Keep::Highest, 0.5).unwrap();
    let e = dynaprune::Pruner::builder(10).policy(p).schedule(dynaprune::Schedule::new(3)).build().unwrap_err();
    assert_eq!(e, dynaprune::PruneError::ScoreCountMismatch { expected: 10, got: 4 });
}

/// A policy outside the crate that breaks the [`Policy`] contract in a chosen way.
#[derive(Debug)]
struct Broken(&'static str);

impl Policy for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn prune_fraction(&self) -> f64 {
        0.5
    }
    fn select(&self, _: &SelectContext, _: &dyn ScoreBuffer, _: &mut rng::Rng) -> Result<Selection> {
        let (indices, lr_factor) = match self.0 {
            "empty" => (vec![], None),
            "twice" => (vec![1, 2, 1], None),
            _ => (vec![0, 1], Some(f64::NAN)),
        };
        Ok(Selection { indices, weights: None, notes: Vec::new(), lr_factor })
    }
}

#[test]
fn a_selection_that_breaks_the_policy_contract_is_a_bad_selection_naming_what() {
    for (how, says) in
        [("empty", "no samples selected"), ("twice", "sample 1 selected twice"), ("nan", "learning-rate factor of NaN")]
    {
        let mut pr = Pruner::builder(4).policy(Broken(how)).schedule(Schedule::new(2)).build().unwrap();
        match pr.plan(0) {
            Err(PruneError::BadSelection(m)) => assert!(m.contains(says), "{how}: {m}"),
            other => panic!("{how}: expected BadSelection, got {other:?}"),
        }
    }
}

#[test]
fn a_shared_rule_behind_an_arc_answers_every_policy_method_like_the_rule() {
    use std::sync::Arc;
    let n = 40;
    let rules: Vec<Arc<dyn Policy>> = vec![
        Arc::new(FullData),
        Arc::new(UniformRandom::new(0.5).unwrap()),
        Arc::new(EpsilonGreedy::builder().prune_fraction(0.5).build().unwrap()),
        Arc::new(Ucb::builder().prune_fraction(0.3).build().unwrap()),
        Arc::new(InfoBatch::from_prune_fraction(0.3).unwrap()),
        Arc::new(Rs2::new(0.5).unwrap()),
        Arc::new(Kakurenbo::new(0.3).unwrap()),
        Arc::new(Seta::new(0.5).unwrap()),
        Arc::new(SelectiveBackprop::for_prune_fraction(0.5).unwrap()),
        Arc::new(StaticScores::new((0..n).map(|i| i as f32).collect(), Keep::Highest, 0.5).unwrap()),
        Arc::new(StaticRandom::new(0.5).unwrap()),
    ];
    let mut buffer = EmaBuffer::new(n, 0.9).unwrap();
    let idx: Vec<usize> = (0..n).collect();
    let losses: Vec<f32> = (0..n).map(|i| ((i * 7) % 11) as f32 / 10.0).collect();
    buffer.observe(0, &idx, &losses).unwrap();
    for rule in rules {
        let shared: Arc<dyn Policy> = Arc::clone(&rule);
        let (a, b): (&dyn Policy, &dyn Policy) = (&*rule, &shared);
        assert_eq!(a.name(), b.name());
        assert_eq!(a.is_dynamic(), b.is_dynamic(), "{}", a.name());
        assert_eq!(a.is_full_data(), b.is_full_data(), "{}", a.name());
        assert_eq!(a.prune_fraction(), b.prune_fraction(), "{}", a.name());
        assert_eq!(a.uses_scores(), b.uses_scores(), "{}", a.name());
        assert_eq!(a.rescore_every(), b.rescore_every(), "{}", a.name());
        assert_eq!(a.preferred_ema_decay(), b.preferred_ema_decay(), "{}", a.name());
        assert_eq!(a.sample_count(), b.sample_count(), "{}", a.name());
        let ctx = SelectContext { epoch: 1, epochs: 4, seed: 3, selection: 1 };
        let (x, y) = (
            a.select(&ctx, &buffer, &mut rng::stream(3, "t", 1)).unwrap(),
            Policy::select(&shared, &ctx, &buffer, &mut rng::stream(3, "t", 1)).unwrap(),
        );
        assert_eq!(x, y, "{}", a.name());
        // And a pruner takes the shared rule.
        let mut p =
            Pruner::builder(n).boxed_policy(Box::new(Arc::clone(&rule))).schedule(Schedule::new(3)).build().unwrap();
        assert!(!p.plan(0).unwrap().is_empty());
    }
}
