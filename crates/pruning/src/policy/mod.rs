//! The [`Policy`] trait and every selection rule.
//!
//! A policy is a pure function of (epoch, score buffer, random stream) to a [`Selection`]: which
//! samples to train on this epoch and, optionally, a loss weight for each. Policies hold only
//! their knobs, never mutable state, so a resumed run re-creates any selection exactly. The
//! [`Pruner`](crate::Pruner) adds the schedule (warm-up, re-selection interval, annealing),
//! shuffling and accounting on top.

mod dynamic;
mod infobatch;
mod kakurenbo;
mod rs2;
mod selective_backprop;
mod seta;
mod staleness;
mod static_scores;

pub use dynamic::{EpsilonDecay, EpsilonGreedy, EpsilonGreedyBuilder, Ucb, UcbBuilder, UniformRandom};
pub use infobatch::{InfoBatch, InfoBatchRate};
pub use kakurenbo::{Kakurenbo, KakurenboLr};
pub use rs2::Rs2;
pub use selective_backprop::{BackpropSelector, SelectiveBackprop};
pub use seta::{kmeans_1d, Seta, SetaBudget};
pub use staleness::Staleness;
pub use static_scores::{Keep, StaticRandom, StaticScores};

use crate::buffer::{SampleStats, ScoreBuffer};
use crate::error::Result;
use crate::rng::Rng;

/// What a policy is told when asked to select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectContext {
    /// The epoch being planned (from 0).
    pub epoch: usize,
    /// The run's total number of epochs.
    pub epochs: usize,
    /// The pruner's root seed, for rules whose randomness spans epochs (RS2's permutations):
    /// derive streams from it with [`crate::rng::stream`], never reseed anything global.
    pub seed: u64,
    /// How many fresh selections the run made before this one (0 for the first).
    pub selection: usize,
}

impl SelectContext {
    /// A context for `epoch` of `epochs`, root seed 0, first selection.
    pub fn new(epoch: usize, epochs: usize) -> Self {
        Self { epoch, epochs, seed: 0, selection: 0 }
    }

    /// Training progress at the start of this epoch, in `[0, 1)`.
    pub fn progress(&self) -> f64 {
        self.epoch as f64 / self.epochs.max(1) as f64
    }
}

/// The samples a policy keeps for an epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    /// Kept sample indices, distinct, in any order (the pruner shuffles them).
    pub indices: Vec<usize>,
    /// Optional loss weights, aligned with `indices`. `None` means all 1.
    pub weights: Option<Vec<f32>>,
    /// Policy-specific facts worth logging, e.g. InfoBatch's threshold and drop probability.
    pub notes: Vec<(String, f64)>,
    /// A factor for the learning rate while this selection trains (`None` = 1). KAKURENBO scales
    /// the rate up for the samples it hides; the training loop applies it.
    pub lr_factor: Option<f64>,
}

/// Which per-sample statistic a score-driven policy ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Statistic {
    /// The running mean (EMA) of the observed values: the default.
    #[default]
    Mean,
    /// The most recent observed value.
    Last,
}

impl Statistic {
    /// This statistic of one record.
    #[inline]
    pub fn of(&self, r: &SampleStats) -> f32 {
        match self {
            Statistic::Mean => r.mean,
            Statistic::Last => r.last,
        }
    }
}

/// A rule that chooses the samples of an epoch.
pub trait Policy: std::fmt::Debug + Send + Sync {
    /// A short, stable name (`"ucb"`, `"infobatch"`, ...), used in logs and saved state.
    fn name(&self) -> &'static str;

    /// `false` for rules fixed before training (static pruning): the pruner then selects once and
    /// reuses that selection for every pruned epoch.
    fn is_dynamic(&self) -> bool {
        true
    }

    /// `true` for the full-data baseline: every epoch trains on everything.
    fn is_full_data(&self) -> bool {
        false
    }

    /// The fraction of samples this rule removes per pruned epoch (nominal; InfoBatch's actual
    /// fraction depends on the scores and is reported per epoch).
    fn prune_fraction(&self) -> f64;

    /// `true` for rules that rank by the score buffer. Rules that ignore it (random, RS2,
    /// static) never ask for a re-scoring pass.
    fn uses_scores(&self) -> bool {
        true
    }

    /// The re-scoring interval this rule needs, in epochs (0 = none): before each selection, every
    /// sample not observed within that many epochs should get a fresh score from a forward-only
    /// pass ([`Pruner::rescore_request`](crate::Pruner::rescore_request)). KAKURENBO needs 1.
    fn rescore_every(&self) -> usize {
        0
    }

    /// The EMA decay of the score buffer this rule is tuned for; [`Pruner::builder`]'s default
    /// buffer uses it (an explicit [`PrunerBuilder::buffer`] overrides it).
    ///
    /// [`Pruner::builder`]: crate::Pruner::builder
    /// [`PrunerBuilder::buffer`]: crate::PrunerBuilder::buffer
    fn preferred_ema_decay(&self) -> f64 {
        crate::EmaBuffer::DEFAULT_DECAY
    }

    /// The number of samples the rule was built for, when it holds per-sample data (static
    /// scores); [`PrunerBuilder::build`](crate::PrunerBuilder::build) rejects a mismatch with the
    /// pruner's sample count. `None` (the default) for rules that take the count from the buffer.
    fn sample_count(&self) -> Option<usize> {
        None
    }

    /// Chooses the samples of `ctx.epoch`.
    fn select(&self, ctx: &SelectContext, buffer: &dyn ScoreBuffer, rng: &mut Rng) -> Result<Selection>;
}

/// A shared rule is a rule: whoever hands one rule to several pruners (the Python bindings do)
/// holds it behind an `Arc`. Rules hold no mutable state, so sharing changes nothing. Every
/// method delegates; a method added to [`Policy`] must be added here too (the compiler does not
/// ask, because of the defaults: `tests/policies.rs` checks each one through an `Arc`).
impl<P: Policy + ?Sized> Policy for std::sync::Arc<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn is_dynamic(&self) -> bool {
        (**self).is_dynamic()
    }
    fn is_full_data(&self) -> bool {
        (**self).is_full_data()
    }
    fn prune_fraction(&self) -> f64 {
        (**self).prune_fraction()
    }
    fn uses_scores(&self) -> bool {
        (**self).uses_scores()
    }
    fn rescore_every(&self) -> usize {
        (**self).rescore_every()
    }
    fn preferred_ema_decay(&self) -> f64 {
        (**self).preferred_ema_decay()
    }
    fn sample_count(&self) -> Option<usize> {
        (**self).sample_count()
    }
    fn select(&self, ctx: &SelectContext, buffer: &dyn ScoreBuffer, rng: &mut Rng) -> Result<Selection> {
        (**self).select(ctx, buffer, rng)
    }
}

/// The full-data baseline: keeps every sample every epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullData;

impl Policy for FullData {
    fn name(&self) -> &'static str {
        crate::catalog::FULL.name
    }
    fn is_full_data(&self) -> bool {
        true
    }
    fn prune_fraction(&self) -> f64 {
        0.0
    }
    fn uses_scores(&self) -> bool {
        false
    }
    fn select(&self, _: &SelectContext, buffer: &dyn ScoreBuffer, _: &mut Rng) -> Result<Selection> {
        Ok(Selection { indices: (0..buffer.len()).collect(), ..Selection::default() })
    }
}

/// Indices of never-observed samples.
pub(crate) fn unseen(buffer: &dyn ScoreBuffer) -> Vec<usize> {
    buffer.records().iter().enumerate().filter(|(_, r)| !r.is_seen()).map(|(i, _)| i).collect()
}

/// Keeps `k` samples: never-seen ones first (a random subset of them if there are more than
/// `k`), then the top of `score` among the seen. Shared by the greedy rules.
pub(crate) fn unseen_then_top(
    buffer: &dyn ScoreBuffer,
    k: usize,
    rng: &mut Rng,
    score: impl Fn(&SampleStats) -> f32,
) -> Vec<usize> {
    let unseen = unseen(buffer);
    if unseen.len() >= k {
        return crate::select::sample(unseen, k, rng);
    }
    let need = k - unseen.len();
    let recs = buffer.records();
    let keys: Vec<u64> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_seen())
        .map(|(i, r)| crate::select::rank_key(score(r), i))
        .collect();
    let mut out = unseen;
    out.extend(crate::select::best_k(keys, need));
    out
}
