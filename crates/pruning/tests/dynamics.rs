//! Selection dynamics: stale samples come back under the default UCB, re-scoring requests follow
//! their interval, and RS2 and KAKURENBO follow their published rules.

use dynaprune::*;
use proptest::prelude::*;

/// A deterministic per-(sample, epoch) number in `[0, 1)`.
fn hash01(i: usize, e: usize, salt: u64) -> f32 {
    let mut z = (i as u64) ^ ((e as u64) << 32) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
}

/// Runs `epochs` epochs (1 warm-up) of `policy`, observing only what each plan holds: sample `i`'s
/// loss is a fixed level plus noise, and sample `j` has the lowest level. Returns the first
/// pruned epoch whose plan held `j`.
fn first_selection_of_lowest(policy: Box<dyn Policy>, n: usize, epochs: usize, salt: u64) -> Option<usize> {
    let j = n / 3;
    let level = |i: usize| if i == j { 0.0 } else { 0.5 + 9.5 * hash01(i, 0, salt) };
    let mut pr =
        Pruner::builder(n).boxed_policy(policy).schedule(Schedule::new(epochs).warmup(1)).seed(salt).build().unwrap();
    for e in 0..epochs {
        let plan = pr.plan(e).unwrap();
        if e > 0 && plan.indices().contains(&j) {
            return Some(e);
        }
        let idx = plan.indices().to_vec();
        let losses: Vec<f32> = idx.iter().map(|&i| level(i) + 2.0 * hash01(i, e + 1, salt) - 1.0).collect();
        pr.observe(&idx, &losses).unwrap();
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The default UCB relaxes a stale sample's belief towards the population and lets its
    /// uncertainty grow, so a sample skipped since the warm-up (the easiest one, so plain UCB never
    /// picks it) is selected again after finitely many epochs.
    #[test]
    fn stale_sample_is_eventually_selected_under_default_ucb(
        n in 20usize..300, pf in 0.2f64..0.85, salt in any::<u64>()
    ) {
        let ucb = Box::new(Ucb::builder().prune_fraction(pf).c(Ucb::DEFAULT_C).build().unwrap());
        prop_assert!(first_selection_of_lowest(ucb, n, 300, salt).is_some());
        let plain = Box::new(Ucb::builder().prune_fraction(pf).c(Ucb::DEFAULT_C).build().unwrap().with_staleness(Staleness::Off).unwrap());
        prop_assert_eq!(first_selection_of_lowest(plain, n, 30, salt), None, "plain UCB freezes the easiest sample out");
    }

    /// RS2 without replacement: each selection holds `k` distinct samples, and every run of `n`
    /// consecutive positions of the selection sequence that starts at a pass boundary is a
    /// permutation of the dataset: everything is covered once before anything repeats.
    #[test]
    fn rs2_covers_the_dataset_before_repeating(n in 2usize..300, pf in 0.0f64..0.95, seed in any::<u64>()) {
        let rs2 = Rs2::new(pf).unwrap();
        let k = ((1.0 - pf) * n as f64).round() as usize;
        prop_assume!(k >= 1);
        let selections = (3 * n).div_ceil(k) + 1;
        let mut sequence = Vec::new();
        for j in 0..selections {
            let s = rs2.selection_of(seed, n, j).unwrap();
            prop_assert_eq!(s.len(), k);
            let mut d = s.clone();
            d.sort_unstable();
            d.dedup();
            prop_assert_eq!(d.len(), k, "selection {} repeats a sample", j);
            prop_assert_eq!(&s, &rs2.selection_of(seed, n, j).unwrap(), "a pure function of (seed, j)");
            sequence.extend(s);
        }
        for pass in sequence.chunks_exact(n).take(3) {
            let mut p = pass.to_vec();
            p.sort_unstable();
            prop_assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
    }

    /// KAKURENBO keeps every sample that is not a confidently, correctly predicted low-loss one,
    /// and hides at most `floor(F_e * n)`.
    #[test]
    fn kakurenbo_hides_only_confident_correct_low_loss_samples(
        n in 5usize..200, f in 0.0f64..0.9, epoch in 0usize..10, salt in any::<u64>()
    ) {
        let mut b = EmaBuffer::new(n, 0.9).unwrap();
        let idx: Vec<usize> = (0..n).collect();
        let loss: Vec<f32> = idx.iter().map(|&i| 3.0 * hash01(i, 1, salt)).collect();
        let correct: Vec<bool> = idx.iter().map(|&i| hash01(i, 2, salt) < 0.7).collect();
        let conf: Vec<f32> = idx.iter().map(|&i| 0.2 + 0.8 * hash01(i, 3, salt)).collect();
        b.observe_predictions(0, &idx, &loss, &correct, &conf).unwrap();
        let k = Kakurenbo::new(f).unwrap();
        let ctx = SelectContext::new(epoch, 10);
        let sel = k.select(&ctx, &b, &mut rng::stream(0, "t", 0)).unwrap();
        let fe = k.max_fraction_at(ctx.progress());
        let kept: std::collections::BTreeSet<usize> = sel.indices.iter().copied().collect();
        let hidden: Vec<usize> = idx.iter().copied().filter(|i| !kept.contains(i)).collect();
        prop_assert!(hidden.len() <= (fe * n as f64) as usize);
        for &h in &hidden {
            prop_assert!(correct[h] && conf[h] >= 0.7, "sample {} hidden without a confident right prediction", h);
        }
        // The candidates are the floor(F_e n) lowest losses: a hidden sample has no lower-loss
        // sample that would also qualify but is kept beyond the cut.
        let mut order = idx.clone();
        order.sort_by(|&a, &c| loss[a].total_cmp(&loss[c]).then(a.cmp(&c)));
        let cut = (fe * n as f64) as usize;
        let want: Vec<usize> = order[..cut].iter().copied().filter(|&i| correct[i] && conf[i] >= 0.7).collect();
        let mut got = hidden.clone();
        got.sort_unstable();
        let mut want_sorted = want;
        want_sorted.sort_unstable();
        prop_assert_eq!(got, want_sorted);
        prop_assert_eq!(sel.lr_factor, Some(1.0 / (1.0 - fe)));
    }
}

#[test]
fn kakurenbo_matches_the_reference_rule_by_hand() {
    // Losses 0..9; even samples predicted right; sample 2 right but unsure (0.5 < tau = 0.7).
    let n = 10;
    let mut b = EmaBuffer::new(n, 0.9).unwrap();
    let idx: Vec<usize> = (0..n).collect();
    let loss: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let correct: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    let conf: Vec<f32> = (0..n).map(|i| if i == 2 { 0.5 } else { 0.9 }).collect();
    b.observe_predictions(0, &idx, &loss, &correct, &conf).unwrap();
    let k = Kakurenbo::new(0.5).unwrap();
    let hidden = |epoch: usize| {
        let sel = k.select(&SelectContext::new(epoch, 10), &b, &mut rng::stream(0, "t", 0)).unwrap();
        let kept: std::collections::BTreeSet<usize> = sel.indices.iter().copied().collect();
        ((0..n).filter(|i| !kept.contains(i)).collect::<Vec<_>>(), sel.lr_factor.unwrap(), sel.notes)
    };
    // Progress 0.1: F_e = 0.5, candidates {0..4}; 1 and 3 are wrong, 2 is unsure: hide {0, 4}.
    let (h, lr, notes) = hidden(1);
    assert_eq!(h, vec![0, 4]);
    assert_eq!(lr, 2.0);
    assert!(notes.contains(&("moved_back".to_string(), 3.0)));
    // Progress 0.3 -> F_e = 0.4 (cut 4: {0..3}); 0.6 -> 0.3 (cut 3); 0.8 -> 0.2 (cut 2: {0, 1}).
    assert_eq!(hidden(3).0, vec![0]);
    assert!((hidden(3).1 - 1.0 / 0.6).abs() < 1e-12);
    assert_eq!(hidden(6).0, vec![0]);
    assert_eq!(hidden(8).0, vec![0]);
    assert!((k.max_fraction_at(0.8) - 0.2).abs() < 1e-12);
    // The factor from the fraction actually hidden: 2 of 10 at progress 0.1 -> 1 / (1 - 0.2) =
    // 1.25 (against 1 / (1 - 0.5) = 2 from F_e); 1 of 10 at 0.3 -> 1 / 0.9. Off: no factor.
    let by_hidden = k.clone().with_lr_rule(KakurenboLr::HiddenFraction);
    let factor = |k: &Kakurenbo, epoch: usize| {
        k.select(&SelectContext::new(epoch, 10), &b, &mut rng::stream(0, "t", 0)).unwrap().lr_factor
    };
    assert_eq!(factor(&by_hidden, 1), Some(1.25));
    assert!((factor(&by_hidden, 3).unwrap() - 1.0 / 0.9).abs() < 1e-12);
    assert_eq!(factor(&k.clone().with_lr_rule(KakurenboLr::Off), 1), None);
    assert_eq!(k.lr_rule(), KakurenboLr::MaxFraction);
    // Without recorded predictions nothing is hidden.
    let mut plain = EmaBuffer::new(n, 0.9).unwrap();
    plain.observe(0, &idx, &loss).unwrap();
    let sel = k.select(&SelectContext::new(1, 10), &plain, &mut rng::stream(0, "t", 0)).unwrap();
    assert_eq!(sel.indices.len(), n);
}

#[test]
fn rescore_requests_follow_the_interval() {
    let n = 40;
    let mut pr = Pruner::builder(n)
        .policy(Ucb::builder().prune_fraction(0.5).c(1.0).build().unwrap())
        .schedule(Schedule::new(8).warmup(1))
        .rescore_every(2)
        .seed(3)
        .build()
        .unwrap();
    assert_eq!(pr.rescore_interval(), 2);
    let mut requested = Vec::new();
    for e in 0..8 {
        let r = pr.rescore_request(e);
        if [3, 5, 7].contains(&e) {
            // When due, what is requested is exactly what was not observed in the last 2 epochs.
            assert_eq!(r, pr.stale(e, 2));
        }
        if !r.is_empty() {
            let v: Vec<f32> = r.iter().map(|&i| i as f32 / 10.0).collect();
            pr.observe(&r, &v).unwrap();
            assert!(pr.stale(e, 2).is_empty(), "after the pass every score is fresh");
        }
        requested.push((e, r.len()));
        let plan = pr.plan(e).unwrap();
        let idx = plan.indices().to_vec();
        let v: Vec<f32> = idx.iter().map(|&i| (i % 7) as f32).collect();
        pr.observe(&idx, &v).unwrap();
    }
    // Selections happen at epochs 1..7 (indices 0..6); due at indices 0, 2, 4, 6 = epochs 1, 3, 5, 7.
    // Epoch 1 follows the full warm-up, so nothing is stale then.
    for (e, len) in requested {
        match e {
            0 | 1 | 2 | 4 | 6 => assert_eq!(len, 0, "epoch {e}"),
            _ => assert!(len > 0, "epoch {e}: the samples skipped in epochs {}..{e} want a score", e - 2),
        }
    }
    // Rules that ignore scores never ask; KAKURENBO always does, every selection.
    let rnd = Pruner::builder(n)
        .policy(UniformRandom::new(0.5).unwrap())
        .schedule(Schedule::new(4))
        .rescore_every(1)
        .build()
        .unwrap();
    assert_eq!(rnd.rescore_interval(), 0);
    let k = Pruner::builder(n).policy(Kakurenbo::new(0.3).unwrap()).schedule(Schedule::new(4)).build().unwrap();
    assert_eq!(k.rescore_interval(), 1);
}

#[test]
fn plan_stats_track_coverage_staleness_and_lr_factor() {
    let n = 100;
    let mut pr = Pruner::builder(n)
        .policy(Ucb::builder().prune_fraction(0.6).c(1.0).build().unwrap().with_staleness(Staleness::Off).unwrap())
        .schedule(Schedule::new(5).warmup(1))
        .build()
        .unwrap();
    let mut last_never = None;
    for e in 0..5 {
        let plan = pr.plan(e).unwrap();
        let s = plan.stats().clone();
        assert_eq!(s.lr_factor, 1.0);
        let zeros = pr.pruned_selection_counts().iter().filter(|&&c| c == 0).count();
        if e == 0 {
            assert_eq!((s.never_selected, s.coverage), (None, None), "no pruned epoch yet");
            assert_eq!((s.mean_staleness, s.max_staleness), (0.0, 0), "nothing seen yet");
        } else {
            assert_eq!(s.never_selected, Some(zeros));
            assert_eq!(s.coverage, Some(1.0 - zeros as f64 / n as f64));
            // Plain UCB freezes: the 60 samples it skips age one epoch per epoch.
            assert_eq!(s.max_staleness as usize, e - 1);
            let want = 60.0 * (e - 1) as f64 / n as f64;
            assert!((s.mean_staleness - want).abs() < 1e-12, "epoch {e}: {} vs {want}", s.mean_staleness);
            last_never = s.never_selected;
        }
        let idx = plan.indices().to_vec();
        let v: Vec<f32> = idx.iter().map(|&i| i as f32).collect();
        pr.observe(&idx, &v).unwrap();
    }
    assert_eq!(last_never, Some(60));
}

#[test]
fn lr_factor_survives_reuse_and_resume() {
    let n = 50;
    let build = || {
        Pruner::builder(n)
            .policy(Kakurenbo::new(0.4).unwrap())
            .schedule(Schedule::new(6).warmup(1).interval(2))
            .seed(1)
            .build()
            .unwrap()
    };
    let feed = |pr: &mut Pruner, idx: &[usize]| {
        let l: Vec<f32> = idx.iter().map(|&i| i as f32 / 50.0).collect();
        let c: Vec<bool> = idx.iter().map(|&i| i % 3 != 0).collect();
        let p: Vec<f32> = idx.iter().map(|_| 0.9).collect();
        pr.observe_predictions(idx, &l, &c, &p).unwrap();
    };
    let mut a = build();
    let mut factors = Vec::new();
    for e in 0..6 {
        let plan = a.plan(e).unwrap();
        factors.push((plan.phase(), plan.lr_factor()));
        feed(&mut a, plan.indices());
        if e == 1 {
            // Resume after the selection epoch: the reuse epoch must keep the factor.
            let bytes = a.state().to_bytes();
            let mut b = build();
            b.restore(PrunerState::from_bytes(&bytes).unwrap()).unwrap();
            let pb = b.plan(2).unwrap();
            assert_eq!(pb.phase(), Phase::Reuse);
            assert_eq!(pb.lr_factor(), 1.0 / 0.6);
        }
    }
    assert_eq!(factors[0], (Phase::Warmup, 1.0));
    assert_eq!(factors[1], (Phase::Select, 1.0 / 0.6));
    assert_eq!(factors[2], (Phase::Reuse, 1.0 / 0.6), "a reused selection keeps its factor");
}

#[test]
fn off_is_the_original_ucb_rule() {
    let n = 64;
    let mut b = EmaBuffer::new(n, 0.9).unwrap();
    for e in 0..3 {
        let idx: Vec<usize> = (0..n).filter(|i| (i + e) % 3 != 0).collect();
        let v: Vec<f32> = idx.iter().map(|&i| hash01(i, e, 7) * 4.0).collect();
        b.observe(e, &idx, &v).unwrap();
    }
    let ucb = Ucb::builder().prune_fraction(0.5).c(1.3).build().unwrap().with_staleness(Staleness::Off).unwrap();
    let mut got = ucb.select(&SelectContext::new(5, 10), &b, &mut rng::stream(0, "t", 0)).unwrap().indices;
    got.sort_unstable();
    let mut order: Vec<usize> = (0..n).collect();
    let score = |i: usize| {
        let r = b.records()[i];
        r.mean + 1.3f32 * r.variance.max(0.0).sqrt()
    };
    order.sort_by(|&a, &c| score(c).total_cmp(&score(a)).then(a.cmp(&c)));
    let mut want = order[..32].to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn new_knobs_and_predictions_are_validated() {
    let bad = |r: Result<Staleness, PruneError>, name: &str| match r {
        Err(PruneError::InvalidKnob { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected an InvalidKnob for {name}, got {other:?}"),
    };
    bad(Staleness::prior(1.5, 0.0), "staleness_retention");
    bad(Staleness::prior(f64::NAN, 0.0), "staleness_retention");
    bad(Staleness::prior(0.5, -0.1), "staleness_drift");
    bad(Staleness::prior(0.5, f64::INFINITY), "staleness_drift");
    bad(Staleness::count_bonus(-1.0), "staleness_bonus");
    assert!(Ucb::builder()
        .prune_fraction(0.5)
        .c(1.0)
        .build()
        .unwrap()
        .with_staleness(Staleness::Prior { retention: 2.0, drift: 0.0 })
        .is_err());
    assert!(matches!(Kakurenbo::new(1.0), Err(PruneError::InvalidKnob { name: "prune_fraction", .. })));
    assert!(matches!(
        Kakurenbo::new(0.3).unwrap().with_tau(f64::NAN),
        Err(PruneError::InvalidKnob { name: "kakurenbo_tau", .. })
    ));
    assert!(matches!(Rs2::new(-0.1), Err(PruneError::InvalidKnob { name: "prune_fraction", .. })));
    let mut b = EmaBuffer::new(3, 0.9).unwrap();
    for conf in [0.0f32, 1.5, f32::NAN] {
        let e = b.observe_predictions(0, &[0, 1], &[1.0, 2.0], &[true, false], &[0.5, conf]).unwrap_err();
        assert!(matches!(e, PruneError::BadConfidence { position: 1, .. }), "{e:?}");
        assert!(e.to_string().contains("not a probability in (0, 1]"), "{e}");
        assert_eq!(b.seen(), 0, "a rejected observation changes nothing");
    }
    assert!(matches!(
        b.observe_predictions(0, &[0, 1], &[1.0, 2.0], &[true], &[0.5, 0.5]),
        Err(PruneError::LengthMismatch { .. })
    ));
}

#[test]
fn epsilon_greedy_prefers_a_responsive_ema_unless_plain() {
    let e = EpsilonGreedy::builder().prune_fraction(0.5).epsilon(0.2).build().unwrap();
    assert_eq!(e.preferred_ema_decay(), EpsilonGreedy::DEFAULT_EMA_DECAY);
    let plain = e.with_staleness(Staleness::Off).unwrap();
    assert_eq!(plain.preferred_ema_decay(), EmaBuffer::DEFAULT_DECAY, "the original rule keeps 0.9");
    assert_eq!(
        Ucb::builder().prune_fraction(0.5).c(1.0).build().unwrap().preferred_ema_decay(),
        EmaBuffer::DEFAULT_DECAY
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Budget matching: with the matched per-epoch fraction, a hard rule's whole run spends
    /// `(1 - f) * n * epochs` sample passes within 1% (or half a sample per epoch, the rounding to
    /// whole samples), whatever its warm-up and annealing.
    #[test]
    fn budget_matched_runs_spend_the_uniform_budget(
        n in 200usize..600, epochs in 3usize..12, warmup in 0usize..3, anneal in 0usize..2, f in 0.05f64..0.8,
        seed in any::<u64>(),
    ) {
        let sched = Schedule::new(epochs).warmup(warmup).anneal(anneal);
        prop_assume!(sched.validate().is_ok());
        let budget = (1.0 - f) * (n * epochs) as f64;
        match sched.budget_matched_fraction(f) {
            Err(e) => {
                prop_assert!((warmup + anneal) as f64 >= (1.0 - f) * epochs as f64 || warmup + anneal == epochs, "{e}");
                prop_assert!(e.to_string().contains("cannot be met"), "{e}");
            }
            Ok(fe) => {
                prop_assume!(((1.0 - fe) * n as f64).round() >= 1.0);
                let mut pr = Pruner::builder(n)
                    .policy(Ucb::builder().prune_fraction(fe).c(1.0).build().unwrap())
                    .schedule(sched)
                    .seed(seed)
                    .build()
                    .unwrap();
                let mut total = 0usize;
                for e in 0..epochs {
                    let p = pr.plan(e).unwrap();
                    total += p.len();
                    let idx = p.indices().to_vec();
                    let v: Vec<f32> = idx.iter().map(|&i| hash01(i, e, seed)).collect();
                    pr.observe(&idx, &v).unwrap();
                }
                // Within 1%, or within the rounding of each epoch's kept count to whole samples
                // (at most half a sample per epoch), which dominates on small datasets.
                let tolerance = (0.01 * budget).max(0.5 * epochs as f64);
                prop_assert!((total as f64 - budget).abs() <= tolerance, "{total} passes vs budget {budget}");
            }
        }
    }
}
