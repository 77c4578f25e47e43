//! The catalog states each rule's facts once; this checks them against the rules themselves, and
//! writes a policy outside the crate with the public helpers only (no `rand` in this file).

use dynaprune::catalog::{self, BufferKind, Kind};
use dynaprune::rng;
use dynaprune::select::top_k;
use dynaprune::{
    EpsilonGreedy, FullData, InfoBatch, Kakurenbo, Keep, Policy, Pruner, Rs2, ScoreBuffer, SelectContext, Selection,
    SelectiveBackprop, Seta, StaticRandom, StaticScores, Ucb, UniformRandom,
};

fn policy(name: &str) -> Box<dyn Policy> {
    let f = 0.5;
    match name {
        "full" => Box::new(FullData),
        "static-random" => Box::new(StaticRandom::new(f).unwrap()),
        "el2n" | "grand" | "grand-last-layer" | "forgetting" => {
            let name = catalog::rule(name).unwrap().name;
            Box::new(StaticScores::new(vec![0.0; 10], Keep::Highest, f).unwrap().with_name(name))
        }
        "random" => Box::new(UniformRandom::new(f).unwrap()),
        "epsilon-greedy" => Box::new(
            EpsilonGreedy::builder().prune_fraction(f).epsilon(EpsilonGreedy::DEFAULT_EPSILON).build().unwrap(),
        ),
        "ucb" => Box::new(Ucb::builder().prune_fraction(f).c(Ucb::DEFAULT_C).build().unwrap()),
        "infobatch" => Box::new(InfoBatch::from_drop_probability(InfoBatch::DEFAULT_DROP_PROBABILITY).unwrap()),
        "rs2" => Box::new(Rs2::new(f).unwrap()),
        "kakurenbo" => Box::new(Kakurenbo::new(f).unwrap()),
        "seta" => Box::new(Seta::new(f).unwrap()),
        "selective-backprop" => Box::new(SelectiveBackprop::for_prune_fraction(f).unwrap()),
        other => panic!("the catalog names `{other}`, which this test cannot build: add it here"),
    }
}

#[test]
fn the_catalog_agrees_with_the_rules() {
    assert_eq!(catalog::RULES.len(), 14);
    for info in catalog::RULES {
        let p = policy(info.name);
        assert_eq!(p.name(), info.name);
        assert_eq!(p.is_full_data(), info.kind == Kind::FullData, "{}", info.name);
        assert_eq!(p.is_dynamic(), info.kind != Kind::Static, "{}", info.name);
        if info.kind == Kind::Dynamic {
            assert_eq!(p.uses_scores(), info.score_based, "{}", info.name);
        }
        assert_eq!(p.rescore_every() > 0, info.reads_predictions, "{}: KAKURENBO re-scores what it hides", info.name);
        assert_eq!(info.scorer.is_some(), matches!(info.name, "el2n" | "grand" | "grand-last-layer" | "forgetting"));
        assert_eq!(info.buffer == BufferKind::LastValue, matches!(info.name, "infobatch" | "seta"));
        assert_eq!(info.warmup_epochs(10), usize::from(info.score_based));
        assert_eq!(info.warmup_epochs(1), 0, "a one-epoch run has no room for a warm-up");
        assert!(!info.summary.is_empty());
        assert_eq!(catalog::rule(info.name), Some(info));
    }
    assert_eq!(catalog::INFOBATCH.anneal_epochs(200), 25, "InfoBatch's delta = 0.875");
    assert_eq!(catalog::UCB.anneal_epochs(200), 0);
    assert_eq!(catalog::scorers().collect::<Vec<_>>(), ["el2n", "grand", "grand-last-layer", "forgetting"]);
    assert!(catalog::rule("nope").is_none());
}

/// Keeps the samples with the highest last loss, plus a few random ones: written with the crate's
/// public helpers, as a user outside the crate would.
#[derive(Debug)]
struct HighLossPlusRandom;

impl Policy for HighLossPlusRandom {
    fn name(&self) -> &'static str {
        "high-loss-plus-random"
    }
    fn prune_fraction(&self) -> f64 {
        0.5
    }
    fn select(
        &self,
        _ctx: &SelectContext,
        buffer: &dyn ScoreBuffer,
        rng: &mut rng::Rng,
    ) -> dynaprune::Result<Selection> {
        let n = buffer.len();
        let k = dynaprune::select::keep_count(n, 0.5)?;
        let all: Vec<usize> = (0..n).collect();
        let mut kept = top_k(&all, k - 2, |i| buffer.get(i).map_or(f32::INFINITY, |s| s.last));
        let rest: Vec<usize> = all.into_iter().filter(|i| !kept.contains(i)).collect();
        kept.extend(rng::sample(rest, 2, rng));
        Ok(Selection { indices: kept, ..Selection::default() })
    }
}

#[test]
fn a_policy_written_outside_the_crate_with_the_public_helpers() {
    let mut p =
        Pruner::builder(20).policy(HighLossPlusRandom).schedule(dynaprune::Schedule::new(3)).seed(1).build().unwrap();
    let first = p.plan(0).unwrap();
    assert_eq!(first.len(), 10);
    let idx: Vec<usize> = (0..20).collect();
    let losses: Vec<f32> = (0..20).map(|i| i as f32).collect();
    p.observe(&idx, &losses).unwrap();
    let mut second: Vec<usize> = p.plan(1).unwrap().indices().to_vec();
    second.sort();
    assert!((12..20).all(|i| second.contains(&i)), "the 8 highest losses are kept: {second:?}");
    assert_eq!(second.len(), 10);
}

#[test]
fn method_labels_round_trip_and_bad_ones_say_why() {
    use dynaprune::catalog::{Method, RULES};
    for r in RULES {
        assert_eq!(Method::parse(r.name).unwrap().to_string(), r.name);
    }
    for label in [
        "ucb-plain",
        "epsilon-greedy-bonus",
        "ucb+rescore2",
        "random+warmup1",
        "kakurenbo+lrhidden",
        "ucb-plain+rescore3+warmup2",
    ] {
        assert_eq!(Method::parse(label).unwrap().to_string(), label);
    }
    for (label, says) in [
        ("nope", "unknown rule `nope`"),
        ("random-plain", "apply to epsilon-greedy and ucb only"),
        ("ucb+lrhidden", "applies to kakurenbo only"),
        ("ucb+rescore0", "(R, W >= 1)"),
        ("ucb+fast", "got `+fast`"),
    ] {
        let e = Method::parse(label).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains(&format!("method `{label}`")), "{label}: {e}");
    }
    assert_eq!(Method::rule_of("ucb-plain+rescore2").map(|r| r.name), Some("ucb"));
    assert!(Method::rule_of("nope").is_none());
}
