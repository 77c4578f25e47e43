//! Named construction, and the old constructors kept as deprecated aliases: an outside client
//! written against them still builds (with a warning) and gets the same rule.

use dynaprune::{EpsilonGreedy, InfoBatch, InfoBatchRate, PruneError, Staleness, Ucb};

#[test]
fn builders_name_every_knob_and_default_the_rest() {
    let ucb = Ucb::builder().prune_fraction(0.5).build().unwrap();
    assert_eq!(
        format!("{ucb:?}"),
        format!("{:?}", Ucb::builder().prune_fraction(0.5).c(Ucb::DEFAULT_C).build().unwrap())
    );
    assert_eq!(ucb.staleness(), Staleness::default());
    let off = Ucb::builder().prune_fraction(0.3).c(2.0).staleness(Staleness::Off).build().unwrap();
    assert_eq!(off.staleness(), Staleness::Off);
    let eg = EpsilonGreedy::builder().prune_fraction(0.5).build().unwrap();
    assert_eq!(
        format!("{eg:?}"),
        format!(
            "{:?}",
            EpsilonGreedy::builder().epsilon(EpsilonGreedy::DEFAULT_EPSILON).prune_fraction(0.5).build().unwrap()
        )
    );
}

#[test]
fn a_builder_without_its_prune_fraction_or_with_a_bad_knob_says_which() {
    assert_eq!(Ucb::builder().c(1.0).build().unwrap_err(), PruneError::MissingKnob { name: "prune_fraction" });
    assert_eq!(EpsilonGreedy::builder().build().unwrap_err(), PruneError::MissingKnob { name: "prune_fraction" });
    assert!(Ucb::builder().build().unwrap_err().to_string().contains(".prune_fraction("));
    for (e, name) in [
        (Ucb::builder().prune_fraction(1.0).build().unwrap_err(), "prune_fraction"),
        (Ucb::builder().prune_fraction(0.5).c(-1.0).build().unwrap_err(), "ucb_c"),
        (Ucb::builder().prune_fraction(0.5).c(f64::NAN).build().unwrap_err(), "ucb_c"),
        (EpsilonGreedy::builder().prune_fraction(0.5).epsilon(1.5).build().unwrap_err(), "epsilon"),
        (EpsilonGreedy::builder().prune_fraction(-0.1).build().unwrap_err(), "prune_fraction"),
    ] {
        assert!(matches!(e, PruneError::InvalidKnob { name: n, .. } if n == name), "{e}");
    }
}

#[test]
fn infobatch_says_which_number_it_takes() {
    let by_fraction = InfoBatch::from_prune_fraction(0.3).unwrap();
    let by_rate = InfoBatch::from_rate(InfoBatchRate::TargetPruneFraction {
        prune_fraction: 0.3,
        max_drop_probability: InfoBatch::DEFAULT_MAX_DROP_PROBABILITY,
    })
    .unwrap();
    assert_eq!(format!("{by_fraction:?}"), format!("{by_rate:?}"));
    let paper = InfoBatch::from_drop_probability(0.5).unwrap();
    assert_eq!(
        format!("{paper:?}"),
        format!("{:?}", InfoBatch::from_rate(InfoBatchRate::DropProbability(0.5)).unwrap())
    );
    assert!(matches!(
        InfoBatch::from_drop_probability(1.0).unwrap_err(),
        PruneError::InvalidKnob { name: "drop_probability", .. }
    ));
    assert!(matches!(
        InfoBatch::from_prune_fraction(f64::NAN).unwrap_err(),
        PruneError::InvalidKnob { name: "prune_fraction", .. }
    ));
}

#[test]
#[allow(deprecated)]
fn the_old_constructors_still_build_the_same_rules() {
    assert_eq!(
        format!("{:?}", Ucb::new(0.5, 2.0).unwrap()),
        format!("{:?}", Ucb::builder().prune_fraction(0.5).c(2.0).build().unwrap())
    );
    assert_eq!(
        format!("{:?}", EpsilonGreedy::new(0.4, 0.1).unwrap()),
        format!("{:?}", EpsilonGreedy::builder().prune_fraction(0.4).epsilon(0.1).build().unwrap())
    );
    assert_eq!(
        format!("{:?}", InfoBatch::new(0.5).unwrap()),
        format!("{:?}", InfoBatch::from_drop_probability(0.5).unwrap())
    );
    assert_eq!(
        format!("{:?}", InfoBatch::with_rate(InfoBatchRate::DropProbability(0.2)).unwrap()),
        format!("{:?}", InfoBatch::from_drop_probability(0.2).unwrap())
    );
    assert_eq!(dynaprune::keep_count(10, 0.3).unwrap(), dynaprune::select::keep_count(10, 0.3).unwrap());
    assert_eq!(dynaprune::rng::keep_count(10, 0.3).unwrap(), 7);
    assert_eq!(dynaprune::rng::top_k(&[0, 1, 2], 1, |i| i as f32), vec![2]);
}
