//! Property tests: every plan is duplicate-free, in range and of the promised size; the same seed
//! gives the same plans; annealing returns everything.

use dynaprune::*;
use proptest::prelude::*;

const KINDS: u8 = 13;

fn policy(kind: u8, pf: f64, n: usize) -> Box<dyn Policy> {
    match kind % KINDS {
        7 => {
            Box::new(Ucb::builder().prune_fraction(pf).c(1.0).build().unwrap().with_staleness(Staleness::Off).unwrap())
        }
        8 => Box::new(
            EpsilonGreedy::builder()
                .prune_fraction(pf)
                .epsilon(0.3)
                .build()
                .unwrap()
                .with_staleness(Staleness::count_bonus(0.5).unwrap())
                .unwrap(),
        ),
        9 => Box::new(Rs2::new(pf).unwrap()),
        10 => Box::new(Kakurenbo::new(pf).unwrap()),
        11 => Box::new(Seta::new(pf).unwrap().with_groups(2 + n % 6).unwrap().with_window_scale(0.5).unwrap()),
        12 => Box::new(Seta::new(pf).unwrap().with_groups(1 + n % 5).unwrap().with_budget(SetaBudget::Reference)),
        0 => Box::new(UniformRandom::new(pf).unwrap()),
        1 => Box::new(EpsilonGreedy::builder().prune_fraction(pf).epsilon(0.3).build().unwrap()),
        2 => Box::new(Ucb::builder().prune_fraction(pf).c(1.0).build().unwrap()),
        3 => Box::new(InfoBatch::from_drop_probability(pf).unwrap()),
        4 => Box::new(StaticRandom::new(pf).unwrap()),
        5 => {
            Box::new(StaticScores::new((0..n).map(|i| ((i * 7919) % 101) as f32).collect(), Keep::Highest, pf).unwrap())
        }
        _ => Box::new(FullData),
    }
}

fn plans(
    kind: u8,
    pf: f64,
    n: usize,
    epochs: usize,
    warmup: usize,
    anneal: usize,
    seed: u64,
) -> Vec<(Phase, Vec<usize>, Option<Vec<f32>>)> {
    let mut pr = Pruner::builder(n)
        .boxed_policy(policy(kind, pf, n))
        .schedule(Schedule::new(epochs).warmup(warmup).anneal(anneal).interval(1 + (seed as usize % 2)))
        .seed(seed)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for e in 0..epochs {
        let p = pr.plan(e).unwrap();
        for b in p.batches(7) {
            let losses: Vec<f32> = b
                .indices
                .iter()
                .map(|&i| {
                    ((i as u64).wrapping_mul(2654435761).wrapping_add((e as u64).wrapping_mul(seed)) % 1000) as f32
                        / 100.0
                })
                .collect();
            // Predictions too (KAKURENBO reads them; the other rules ignore them).
            let correct: Vec<bool> = losses.iter().map(|&l| l < 6.0).collect();
            let conf: Vec<f32> = losses.iter().map(|&l| (1.0 - l / 12.0).clamp(0.1, 1.0)).collect();
            pr.observe_predictions(b.indices, &losses, &correct, &conf).unwrap();
        }
        let (i, w, s) = p.into_parts();
        out.push((s.phase, i, w));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn plans_are_valid(kind in 0u8..KINDS, pf in 0.0f64..0.9, n in 10usize..400, epochs in 3usize..7, seed in any::<u64>()) {
        let (warmup, anneal) = (1, 1);
        let infobatch = kind % KINDS == 3;
        let kakurenbo = kind % KINDS == 10;
        let seta_reference = kind % KINDS == 12;
        let full = kind % KINDS == 6;
        for (phase, idx, w) in plans(kind, pf, n, epochs, warmup, anneal, seed) {
            let mut s = idx.clone();
            s.sort_unstable();
            s.dedup();
            prop_assert_eq!(s.len(), idx.len(), "duplicates");
            prop_assert!(idx.iter().all(|&i| i < n));
            if phase.is_full() {
                prop_assert_eq!(idx.len(), n, "full-data epochs (warm-up, annealing) return everything");
                prop_assert!(w.is_none(), "full-data epochs have unit weights");
            } else if infobatch {
                // Target-free InfoBatch drops round(r * below-mean) samples, r = pf: at least
                // nothing, at most round(pf * n); survivors weigh exactly 1 or 1 / (1 - pf).
                prop_assert!(idx.len() >= n - (pf * n as f64).round() as usize && idx.len() <= n);
                let w = w.as_ref().expect("InfoBatch weights its plan");
                let up = (1.0 / (1.0 - pf)) as f32;
                prop_assert!(w.iter().all(|&x| x == 1.0 || x == up), "weights are 1 or 1/(1-r)");
            } else if kakurenbo {
                // Hides at most floor(F * n) samples (F_e <= F) and never weights them.
                prop_assert!(idx.len() >= n - (pf * n as f64) as usize && idx.len() <= n);
                prop_assert!(w.is_none());
            } else if seta_reference {
                // The reference's arithmetic: the window's part of a random floor(keep * n).
                let keep = (1.0 - pf).clamp(0.1, 1.0);
                prop_assert!(!idx.is_empty() && idx.len() <= ((keep * n as f64) as usize).max(1));
                prop_assert!(w.is_none());
            } else if !full {
                prop_assert_eq!(idx.len(), ((1.0 - pf) * n as f64).round() as usize);
            }
            if let Some(w) = &w { prop_assert_eq!(w.len(), idx.len()); }
        }
    }

    #[test]
    fn same_seed_same_plans(kind in 0u8..KINDS, pf in 0.0f64..0.9, n in 10usize..200, seed in any::<u64>()) {
        prop_assert_eq!(plans(kind, pf, n, 4, 1, 1, seed), plans(kind, pf, n, 4, 1, 1, seed));
    }
}
