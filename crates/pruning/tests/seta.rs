//! SeTa: the reference code's arithmetic by hand (window size with Python's rounding, the slide,
//! the groups), the exact budget, never-seen samples, annealing and bad knobs.

use dynaprune::policy::kmeans_1d;
use dynaprune::{LastValueBuffer, Phase, PruneError, Pruner, Schedule, Seta, SetaBudget};

/// Twelve samples in three clear loss groups: 0-3 easy, 4-7 medium, 8-11 hard.
fn loss(i: usize) -> f32 {
    [0.10, 0.11, 0.12, 0.13, 1.00, 1.01, 1.02, 1.03, 3.00, 3.01, 3.02, 3.03][i]
}

fn pruner(seta: Seta, epochs: usize) -> Pruner {
    Pruner::builder(12)
        .policy(seta)
        .buffer(LastValueBuffer::new(12).unwrap())
        .schedule(Schedule::new(epochs).warmup(1))
        .seed(7)
        .build()
        .unwrap()
}

/// Plans every epoch, feeding each sample's fixed loss back; returns each epoch's sorted plan and
/// its notes.
/// Each epoch's phase, sorted plan and notes.
type Epochs = Vec<(Phase, Vec<usize>, Vec<(String, f64)>)>;

fn run(mut p: Pruner, epochs: usize) -> Epochs {
    let mut out = Vec::new();
    for e in 0..epochs {
        let plan = p.plan(e).unwrap();
        let losses: Vec<f32> = plan.indices().iter().map(|&i| loss(i)).collect();
        p.observe(plan.indices(), &losses).unwrap();
        let mut idx = plan.indices().to_vec();
        idx.sort_unstable();
        out.push((plan.phase(), idx, plan.stats().notes.clone()));
    }
    out
}

fn note(notes: &[(String, f64)], key: &str) -> f64 {
    notes.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no note {key}: {notes:?}")).1
}

#[test]
fn window_and_slide_follow_the_reference() {
    // slide_easy2hard: window = round(num_group * window_scale) (Python: half to even), start =
    // iterations % (num_group - window + 1).
    let cifar = Seta::new(0.1).unwrap(); // scripts/cifar.sh: 5 groups, 0.9
    assert_eq!((cifar.groups(), cifar.window()), (5, 4)); // round(4.5) = 4 in Python
    assert_eq!((1..6).map(|j| cifar.window_start(j)).collect::<Vec<_>>(), [1, 0, 1, 0, 1]);
    let class = Seta::new(0.1).unwrap().with_groups(10).unwrap().with_window_scale(0.5).unwrap();
    assert_eq!(class.window(), 5);
    assert_eq!((1..9).map(|j| class.window_start(j)).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 0, 1, 2]);
    assert_eq!(Seta::new(0.1).unwrap().with_window_scale(0.5).unwrap().window(), 2); // round(2.5) = 2
    assert_eq!(Seta::new(0.1).unwrap().with_window_scale(0.7).unwrap().window(), 4);
    // round(3.5) = 4
}

#[test]
fn kmeans_finds_the_obvious_groups() {
    let xs = [0.1, 0.2, 0.3, 5.0, 5.1, 9.9, 10.0];
    assert_eq!(kmeans_1d(&xs, 3, 300), [0, 3, 5, 7]);
    assert_eq!(kmeans_1d(&xs, 1, 300), [0, 7]);
    // Quantile start [0.2, 5.0, 9.9]... a cluster of equal values stays together.
    assert_eq!(kmeans_1d(&[1.0, 1.0, 1.0, 1.0, 2.0], 2, 300), [0, 4, 5]);
    // More groups than distinct values: the extra groups stay empty, the intervals stay ordered.
    let b = kmeans_1d(&[1.0, 1.0, 2.0, 2.0], 3, 300);
    assert_eq!((b[0], b[3]), (0, 4));
    assert!(b.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(kmeans_1d(&[], 3, 300), [0, 0, 0, 0]);
}

#[test]
fn reference_budget_keeps_the_window_by_hand() {
    // 3 groups, window round(3 * 0.67) = 2, keep ratio 1 (prune_fraction 0): selection 0 keeps
    // every group, selection 1 groups 1-2 (start 1), selection 2 groups 0-1 (start 0), ...
    let s = Seta::new(0.0).unwrap().with_groups(3).unwrap().with_window_scale(0.67).unwrap();
    let plans = run(pruner(s.with_budget(SetaBudget::Reference), 10), 10);
    let easy_medium: Vec<usize> = (0..8).collect();
    let medium_hard: Vec<usize> = (4..12).collect();
    let all: Vec<usize> = (0..12).collect();
    assert_eq!(plans[0].0, Phase::Warmup);
    assert_eq!(plans[1].1, all, "the first selection keeps every group");
    assert_eq!(plans[2].1, medium_hard);
    assert_eq!(plans[3].1, easy_medium);
    assert_eq!(plans[4].1, medium_hard);
    assert_eq!(note(&plans[2].2, "window_start"), 1.0);
    assert_eq!(note(&plans[3].2, "window_start"), 0.0);
    assert_eq!(note(&plans[2].2, "fraction_removed"), 4.0 / 12.0);
    // Epochs 8 and 9 (epoch + 1 > 0.875 * 10): random subsets of the keep ratio, here everything.
    for p in &plans[8..] {
        assert_eq!(note(&p.2, "annealing"), 1.0);
        assert_eq!(p.1, all);
    }
    assert_eq!(note(&plans[7].2, "annealing"), 0.0);
}

#[test]
fn exact_budget_keeps_k_from_the_window_and_widens_it_when_short() {
    // prune 0.5: k = 6 of the window's 8 (groups 1-2 at selection 1): only medium and hard samples.
    let plans = run(pruner(Seta::new(0.5).unwrap().with_groups(3).unwrap().with_window_scale(0.67).unwrap(), 10), 10);
    for (e, p) in plans.iter().enumerate().skip(1) {
        assert_eq!(p.1.len(), 6, "epoch {e}: exactly k");
    }
    assert!(plans[2].1.iter().all(|&i| i >= 4), "{:?}", plans[2].1);
    assert!(plans[3].1.iter().all(|&i| i < 8), "{:?}", plans[3].1);
    assert_eq!(note(&plans[2].2, "widened_groups"), 0.0);
    // prune 0.25: k = 9 > 8 in the window: one more group, the harder side first (none harder
    // at start 1, so the easy group joins; at start 0 the hard group joins).
    let plans = run(pruner(Seta::new(0.25).unwrap().with_groups(3).unwrap().with_window_scale(0.67).unwrap(), 10), 10);
    assert_eq!(plans[2].1.len(), 9);
    assert_eq!(note(&plans[2].2, "widened_groups"), 1.0);
    assert_eq!((note(&plans[2].2, "window_start"), note(&plans[2].2, "window_groups")), (0.0, 3.0));
    assert_eq!((note(&plans[3].2, "window_start"), note(&plans[3].2, "window_groups")), (0.0, 3.0));
}

#[test]
fn never_seen_samples_join_the_hardest_group() {
    // No warm-up, exact budget, 2 groups, window 1: selection 0 keeps 6 random samples, so 6 are
    // never seen at selection 1, whose window (start 1) is the hard group: the unseen are in it.
    let mut p = Pruner::builder(12)
        .policy(Seta::new(0.5).unwrap().with_groups(2).unwrap().with_window_scale(0.5).unwrap())
        .buffer(LastValueBuffer::new(12).unwrap())
        .schedule(Schedule::new(10))
        .seed(3)
        .build()
        .unwrap();
    let first = p.plan(0).unwrap();
    let seen: Vec<usize> = first.indices().to_vec();
    let losses: Vec<f32> = seen.iter().map(|&i| loss(i)).collect();
    p.observe(&seen, &losses).unwrap();
    let second = p.plan(1).unwrap();
    let unseen: Vec<usize> = (0..12).filter(|i| !seen.contains(i)).collect();
    // The hard group of the seen samples plus every unseen one make the pool; k = 6 of it.
    assert_eq!(second.len(), 6);
    let mut hard_seen: Vec<f32> = seen.iter().map(|&i| loss(i)).collect();
    hard_seen.sort_by(f32::total_cmp);
    let pool_ok = |i: usize| unseen.contains(&i) || loss(i) > hard_seen[0];
    assert!(second.indices().iter().all(|&i| pool_ok(i)), "{:?} from unseen {:?}", second.indices(), unseen);
}

#[test]
fn bad_knobs_name_themselves() {
    let knob = |r: Result<Seta, PruneError>| match r {
        Err(PruneError::InvalidKnob { name, .. }) => name,
        other => panic!("expected InvalidKnob, got {other:?}"),
    };
    assert_eq!(knob(Seta::new(-0.1)), "prune_fraction");
    assert_eq!(knob(Seta::new(1.0)), "prune_fraction");
    assert_eq!(knob(Seta::new(f64::NAN)), "prune_fraction");
    assert_eq!(knob(Seta::new(0.5).unwrap().with_groups(0)), "seta_groups");
    for ws in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
        assert_eq!(knob(Seta::new(0.5).unwrap().with_window_scale(ws)), "seta_window_scale", "{ws}");
    }
    // Conflicting: one group at a scale that rounds to an empty window, either order.
    assert_eq!(knob(Seta::new(0.5).unwrap().with_groups(1).unwrap().with_window_scale(0.4)), "seta_window_scale");
    assert_eq!(
        knob(Seta::new(0.5).unwrap().with_groups(10).unwrap().with_window_scale(0.1).unwrap().with_groups(2)),
        "seta_window_scale"
    );
    for d in [0.0, -1.0, 1.5, f64::NAN] {
        assert_eq!(knob(Seta::new(0.5).unwrap().with_delta(d)), "seta_delta", "{d}");
    }
}
