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

/// InfoBatch's annealing point (its paper's `delta`): the last `1 - delta` of the epochs train on
/// full data. [`crate::InfoBatch::DEFAULT_DELTA`] and [`INFOBATCH`]'s annealing read it.
pub const INFOBATCH_DELTA: f64 = 0.875;

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
    anneal_fraction: 1.0 - INFOBATCH_DELTA,
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

/// The budget name of cells held to uniform random's sample passes (`--budget matched`).
pub const BUDGET_MATCHED: &str = "matched";
/// The budget name of cells whose pruned epochs each remove the prune fraction (`--budget
/// nominal`).
pub const BUDGET_NOMINAL: &str = "nominal";
/// The budget name of the full-data baseline, which every budget shares.
pub const BUDGET_NONE: &str = "none";

/// The method-label suffix of the original rule (`--staleness off`): `ucb-plain`.
pub const PLAIN_SUFFIX: &str = "-plain";
/// The method-label suffix of the UCB1 count bonus (`--staleness count-bonus`): `ucb-bonus`.
pub const BONUS_SUFFIX: &str = "-bonus";
/// The method-label part of a forward-only re-scoring interval (`--rescore-every R`):
/// `ucb+rescore2`.
pub const RESCORE_PREFIX: &str = "+rescore";
/// The method-label part of full-data warm-up epochs given to a rule that needs no scores
/// (`--warmup-epochs W`): `random+warmup1`.
pub const WARMUP_PREFIX: &str = "+warmup";

/// How the statistics a rule skipped age, as a method label says it ([`PLAIN_SUFFIX`],
/// [`BONUS_SUFFIX`], or nothing for the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LabelStaleness {
    /// The rule's default ([`crate::Staleness::default`]); no suffix.
    #[default]
    Default,
    /// [`crate::Staleness::Off`], the original rule: `-plain`.
    Off,
    /// [`crate::Staleness::CountBonus`]: `-bonus`.
    CountBonus,
}

/// A method label: the name the grid, the reports and the run folders give a rule *variant*,
/// written and read here only. Grammar: `<rule>[-plain|-bonus][+rescoreR][+warmupW][+lrhidden]`,
/// e.g. `ucb-plain`, `ucb+rescore2`, `random+warmup1`, `kakurenbo+lrhidden`.
///
/// ```
/// use dynaprune::catalog::{LabelStaleness, Method};
/// let m = Method::parse("ucb-plain+rescore2")?;
/// assert_eq!((m.rule.name, m.staleness, m.rescore_every), ("ucb", LabelStaleness::Off, Some(2)));
/// assert_eq!(m.to_string(), "ucb-plain+rescore2");
/// assert!(Method::parse("random-plain").is_err()); // uniform random has no staleness model
/// # Ok::<(), dynaprune::PruneError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Method {
    /// The rule.
    pub rule: &'static RuleInfo,
    /// Its staleness variant (only for rules with [`RuleInfo::staleness`]).
    pub staleness: LabelStaleness,
    /// A forward-only re-scoring interval in epochs, `>= 1`.
    pub rescore_every: Option<usize>,
    /// Full-data warm-up epochs, `>= 1`.
    pub warmup_epochs: Option<usize>,
    /// KAKURENBO's learning-rate factor from the fraction actually hidden ([`LR_HIDDEN_SUFFIX`]).
    pub lr_hidden: bool,
}

impl Method {
    /// The plain rule, no variant.
    pub fn of(rule: &'static RuleInfo) -> Self {
        Self { rule, staleness: LabelStaleness::Default, rescore_every: None, warmup_epochs: None, lr_hidden: false }
    }

    /// Reads a label, checking that each part exists and applies to the rule.
    pub fn parse(label: &str) -> crate::Result<Self> {
        let bad = |why: String| crate::PruneError::InvalidMethod { label: label.to_string(), why };
        let mut parts = label.split('+');
        let base = parts.next().unwrap_or(label);
        let (name, staleness) = split_staleness(base);
        let rule = rule(name).ok_or_else(|| {
            bad(format!(
                "unknown rule `{name}`: expected one of {}, optionally with {PLAIN_SUFFIX} or {BONUS_SUFFIX} (rules \
                 with staleness) and {RESCORE_PREFIX}R / {WARMUP_PREFIX}W",
                RULES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let mut m = Self { staleness, ..Self::of(rule) };
        if staleness != LabelStaleness::Default && !rule.staleness {
            let with: Vec<&str> = RULES.iter().filter(|r| r.staleness).map(|r| r.name).collect();
            return Err(bad(format!("{PLAIN_SUFFIX} and {BONUS_SUFFIX} apply to {} only", with.join(" and "))));
        }
        for extra in parts {
            let extra = format!("+{extra}");
            let num =
                |prefix: &str| extra.strip_prefix(prefix).and_then(|x| x.parse::<usize>().ok()).filter(|&x| x > 0);
            if let Some(r) = num(RESCORE_PREFIX) {
                m.rescore_every = Some(r);
            } else if let Some(w) = num(WARMUP_PREFIX) {
                m.warmup_epochs = Some(w);
            } else if extra == LR_HIDDEN_SUFFIX {
                if rule.name != KAKURENBO.name {
                    return Err(bad(format!("{LR_HIDDEN_SUFFIX} applies to {} only", KAKURENBO.name)));
                }
                m.lr_hidden = true;
            } else {
                return Err(bad(format!(
                    "expected {RESCORE_PREFIX}R, {WARMUP_PREFIX}W (R, W >= 1) or {LR_HIDDEN_SUFFIX} after a `+`, got \
                     `{extra}`"
                )));
            }
        }
        Ok(m)
    }

    /// The rule a label names, without checking its variant parts (`ucb-plain+rescore2` ->
    /// UCB); `None` for a name that is no rule.
    pub fn rule_of(label: &str) -> Option<&'static RuleInfo> {
        rule(split_staleness(label.split('+').next().unwrap_or(label)).0)
    }
}

fn split_staleness(base: &str) -> (&str, LabelStaleness) {
    if let Some(p) = base.strip_suffix(PLAIN_SUFFIX) {
        (p, LabelStaleness::Off)
    } else if let Some(p) = base.strip_suffix(BONUS_SUFFIX) {
        (p, LabelStaleness::CountBonus)
    } else {
        (base, LabelStaleness::Default)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.rule.name)?;
        match self.staleness {
            LabelStaleness::Default => {}
            LabelStaleness::Off => f.write_str(PLAIN_SUFFIX)?,
            LabelStaleness::CountBonus => f.write_str(BONUS_SUFFIX)?,
        }
        if let Some(r) = self.rescore_every {
            write!(f, "{RESCORE_PREFIX}{r}")?;
        }
        if let Some(w) = self.warmup_epochs {
            write!(f, "{WARMUP_PREFIX}{w}")?;
        }
        if self.lr_hidden {
            f.write_str(LR_HIDDEN_SUFFIX)?;
        }
        Ok(())
    }
}
