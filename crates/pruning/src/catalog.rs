//! What every built-in rule is, stated once: its name, whether it re-selects during training,
//! which static scores it needs, its default warm-up and annealing, the score buffer it is tuned
//! for, and whether it ages stale samples or reads predictions. The policy types take their
//! names from here, and so do the harness's flags, its reports, the grid (`xtask`) and the tests.
//!
//! ```
//! use dynaprune::catalog::{self, Kind};
//!
//! let ucb = catalog::rule("ucb").unwrap();
//! assert_eq!(ucb.kind, Kind::Dynamic);
//! assert_eq!(ucb.warmup_epochs(10), 1); // one full-data epoch fills the score buffer
//! assert_eq!(catalog::rule("el2n").unwrap().scorer, Some("el2n"));
//! assert_eq!(catalog::RULES.iter().filter(|r| r.kind == Kind::Static).count(), 5);
//! ```

use crate::policy::InfoBatch;

/// When a rule chooses its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Every sample, every epoch (the baseline).
    FullData,
    /// Once, before training.
    Static,
    /// Again during training.
    Dynamic,
}

/// The score buffer a rule is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferKind {
    /// [`crate::EmaBuffer`], with the decay of [`crate::Policy::preferred_ema_decay`].
    Ema,
    /// [`crate::LastValueBuffer`]: the latest value only (InfoBatch's loss of the last epoch).
    LastValue,
}

/// The facts of one built-in rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleInfo {
    /// The stable name: [`crate::Policy::name`], the command line, results.
    pub name: &'static str,
    /// One line: what it does and where it comes from.
    pub summary: &'static str,
    /// When it chooses.
    pub kind: Kind,
    /// The static scores it ranks by (`el2n`, `grand`, `grand-last-layer`, `forgetting`), computed
    /// before training by the caller.
    pub scorer: Option<&'static str>,
    /// `true` for dynamic rules that rank by per-sample scores observed during training: they need
    /// a full-data warm-up epoch to fill the buffer.
    pub score_based: bool,
    /// Full-data epochs at the end, as a fraction of the run (InfoBatch's `1 - delta`).
    pub anneal_fraction: f64,
    /// The buffer it is tuned for.
    pub buffer: BufferKind,
    /// `true` for rules whose ranking ages the statistics of samples they skipped
    /// ([`crate::Staleness`]).
    pub staleness: bool,
    /// `true` for rules that read predictions (correctness, confidence) as well as scores
    /// ([`crate::Pruner::observe_predictions`]).
    pub reads_predictions: bool,
    /// `true` for rules that choose within each batch, after a forward pass over it
    /// ([`crate::SelectiveBackprop`]): the training loop runs a candidate pass, then trains on
    /// what [`crate::BackpropSelector`] keeps. Their epoch plans hold every sample.
    pub batch_level: bool,
}

impl RuleInfo {
    /// `true` for rules that re-select during training.
    pub fn is_dynamic(&self) -> bool {
        self.kind == Kind::Dynamic
    }

    /// The default full-data warm-up of a run of `epochs`: one epoch for score-based rules (when
    /// the run has more than one), else none.
    pub fn warmup_epochs(&self, epochs: usize) -> usize {
        usize::from(self.score_based && epochs > 1)
    }

    /// The default full-data annealing epochs at the end of a run of `epochs`.
    pub fn anneal_epochs(&self, epochs: usize) -> usize {
        (self.anneal_fraction * epochs as f64).round() as usize
    }
}

const fn base(name: &'static str, summary: &'static str, kind: Kind) -> RuleInfo {
    RuleInfo {
        name,
        summary,
        kind,
        scorer: None,
        score_based: false,
        anneal_fraction: 0.0,
        buffer: BufferKind::Ema,
        staleness: false,
        reads_predictions: false,
        batch_level: false,
    }
}

const fn scored(name: &'static str, summary: &'static str) -> RuleInfo {
    RuleInfo { scorer: Some(name), ..base(name, summary, Kind::Static) }
}

/// Full data, every epoch.
pub const FULL: RuleInfo = base("full", "Full data, every epoch (the baseline)", Kind::FullData);
/// Static random subset.
pub const STATIC_RANDOM: RuleInfo =
    base("static-random", "Static: one random subset chosen before training", Kind::Static);
/// Static EL2N.
pub const EL2N: RuleInfo = scored("el2n", "Static: keep by EL2N score (Paul et al., 2021), computed before training");
/// Static GraNd, all parameters.
pub const GRAND: RuleInfo =
    scored("grand", "Static: keep by GraNd score at initialisation, full-parameter gradient norm");
/// Static GraNd, last layer.
pub const GRAND_LAST_LAYER: RuleInfo =
    scored("grand-last-layer", "Static: keep by GraNd score at initialisation, last-layer approximation");
/// Static forgetting counts.
pub const FORGETTING: RuleInfo =
    scored("forgetting", "Static: keep by forgetting counts (Toneva et al., 2019) from a full-data run");
/// Dynamic uniform random.
pub const RANDOM: RuleInfo = base("random", "Dynamic: a new uniformly random subset every selection", Kind::Dynamic);
/// Epsilon-greedy.
pub const EPSILON_GREEDY: RuleInfo = RuleInfo {
    score_based: true,
    staleness: true,
    ..base("epsilon-greedy", "Dynamic: epsilon-greedy on per-sample loss statistics (Raju et al., 2021)", Kind::Dynamic)
};
/// UCB.
pub const UCB: RuleInfo = RuleInfo {
    score_based: true,
    staleness: true,
    ..base("ucb", "Dynamic: upper confidence bound on per-sample loss statistics (Raju et al., 2021)", Kind::Dynamic)
};
/// InfoBatch.
pub const INFOBATCH: RuleInfo = RuleInfo {
    score_based: true,
    anneal_fraction: 1.0 - InfoBatch::DEFAULT_DELTA,
    buffer: BufferKind::LastValue,
    ..base(
        "infobatch",
        "Dynamic: InfoBatch soft pruning with loss rescaling and annealing (Qin et al., 2024)",
        Kind::Dynamic,
    )
};
/// RS2.
pub const RS2: RuleInfo = base(
    "rs2",
    "Dynamic: RS2 without replacement, consecutive slices of random permutations (Okanovic et al., 2023)",
    Kind::Dynamic,
);
/// KAKURENBO.
pub const KAKURENBO: RuleInfo = RuleInfo {
    score_based: true,
    reads_predictions: true,
    ..base(
        "kakurenbo",
        "Dynamic: KAKURENBO, hide confidently learned low-loss samples, re-score them each epoch, scale the \
         learning rate (Nguyen et al., 2023)",
        Kind::Dynamic,
    )
};

/// SeTa.
pub const SETA: RuleInfo = RuleInfo {
    score_based: true,
    buffer: BufferKind::LastValue,
    ..base(
        "seta",
        "Dynamic: SeTa, k-means groups of the losses, a window sliding from easy to hard groups (Zhou et al., 2025)",
        Kind::Dynamic,
    )
};

/// Selective-Backprop.
pub const SELECTIVE_BACKPROP: RuleInfo = RuleInfo {
    batch_level: true,
    ..base(
        "selective-backprop",
        "Dynamic, per batch: Selective-Backprop, a forward pass over each batch, then backprop on the samples kept \
         with probability percentile(loss)^beta (Jiang et al., 2019)",
        Kind::Dynamic,
    )
};

/// Every built-in rule: the baseline, the static rules, then the dynamic ones.
pub const RULES: &[RuleInfo] = &[
    FULL,
    STATIC_RANDOM,
    EL2N,
    GRAND,
    GRAND_LAST_LAYER,
    FORGETTING,
    RANDOM,
    EPSILON_GREEDY,
    UCB,
    INFOBATCH,
    RS2,
    KAKURENBO,
    SETA,
    SELECTIVE_BACKPROP,
];

/// The rule named `name`.
pub fn rule(name: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.name == name)
}

/// The names of the static scores the rules need, in [`RULES`] order.
pub fn scorers() -> impl Iterator<Item = &'static str> {
    RULES.iter().filter_map(|r| r.scorer)
}

/// The method-label suffix of KAKURENBO with its learning-rate factor taken from the fraction
/// actually hidden each epoch ([`crate::KakurenboLr::HiddenFraction`]): `kakurenbo+lrhidden`.
pub const LR_HIDDEN_SUFFIX: &str = "+lrhidden";
