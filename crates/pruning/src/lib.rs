// The crate's front page is its README (the example, the rules, data-parallel training), so that
// the example exists once, here and on crates.io, and runs as a doctest; the map follows.
#![doc = include_str!("../README.md")]
//!
//! ## Map of the crate
//! - [`buffer`]: the [`ScoreBuffer`] trait (a [`SampleStats`] record per sample: last value, EMA
//!   mean and variance, count, last epoch) with [`EmaBuffer`] and [`LastValueBuffer`].
//! - [`policy`]: the [`Policy`] trait and the rules — [`FullData`]; static [`StaticScores`]
//!   (top / bottom / offset window of EL2N, GraNd, forgetting or any scores) and [`StaticRandom`];
//!   dynamic [`UniformRandom`], [`EpsilonGreedy`], [`Ucb`] (Raju et al., 2021; with
//!   [`Staleness`], so that the samples they skip come back), [`InfoBatch`] (Qin et al., 2024),
//!   [`Rs2`] (Okanovic et al., 2023), [`Kakurenbo`] (Nguyen et al., 2023) and [`Seta`] (Zhou et
//!   al., 2025); per batch, [`SelectiveBackprop`] (Jiang et al., 2019) with its
//!   [`BackpropSelector`].
//! - [`catalog`]: the facts of every built-in rule, stated once ([`catalog::RULES`]: name,
//!   static or dynamic, static scorer, default warm-up and annealing, buffer, staleness).
//! - [`schedule`]: [`Schedule`] — warm-up, re-selection interval, annealing — shared by all rules.
//! - [`pruner`]: [`Pruner`], which drives a policy epoch by epoch, shuffles, keeps the
//!   accounting ([`PlanStats`]: overlap, coverage, staleness; per-sample selection counts), and
//!   names the samples that want a fresh score from a forward-only pass
//!   ([`Pruner::rescore_request`]; the caller runs the pass and charges its cost).
//! - [`plan`]: [`EpochPlan`] and its batches.
//! - [`shard`]: [`EpochPlan::shard`] cuts a plan into equal per-rank [`PlanShard`]s for
//!   data-parallel training, the way PyTorch's `DistributedSampler` does (padded, padding last,
//!   never counted or observed twice).
//! - [`state`]: [`PrunerState`], a versioned, checksummed binary snapshot for resuming.
//! - [`rng`]: seed derivation; one seed fixes everything, each purpose gets its own stream. Its
//!   hashes ([`rng::mix64`], [`rng::fnv1a`]) are the workspace's only ones; the random helpers
//!   for policy authors ([`rng::sample`], [`rng::shuffle_together`], ...).
//! - [`select`]: the deterministic helpers for policy authors: [`select::keep_count`],
//!   [`select::top_k`].
//!
//! ## Conventions
//! - `prune_fraction` is always the fraction of samples **removed**; hard rules keep exactly
//!   `round((1 - prune_fraction) * n)` samples.
//! - Weighted losses follow InfoBatch: `sum(w_i * loss_i) / batch_len`
//!   ([`PlanBatch::weighted_mean`]).
//! - Invalid knobs and inputs return a [`PruneError`] (unequal lengths included, e.g. in
//!   [`rng::shuffle_together`]); nothing in the public API panics on bad input except
//!   [`EpochPlan::batches`] with a batch size of 0 (as [`slice::chunks`]).
//! - *Reconstructed* defaults (the paper does not publish them): per-sample cross-entropy loss as
//!   the score, EMA decay 0.9 (0.5 for epsilon-greedy with staleness on; 0.9 with
//!   [`Staleness::Off`], the original rule), epsilon 0.2, UCB `c = 1.0`, and the
//!   [`Staleness`] model (retention 0.5, drift 0.1) chosen by measurement. All are knobs.

#![warn(missing_docs)]

pub mod buffer;
pub mod catalog;
mod error;
pub mod plan;
pub mod policy;
pub mod pruner;
pub mod rng;
pub mod schedule;
pub mod select;
pub mod shard;
pub mod state;

pub use buffer::{EmaBuffer, LastValueBuffer, SampleStats, ScoreBuffer};
pub use error::{PruneError, Result};
pub use plan::{EpochPlan, PlanBatch, PlanStats};
pub use policy::{
    BackpropSelector, EpsilonDecay, EpsilonGreedy, EpsilonGreedyBuilder, FullData, InfoBatch, InfoBatchRate, Kakurenbo,
    KakurenboLr, Keep, Policy, Rs2, SelectContext, Selection, SelectiveBackprop, Seta, SetaBudget, Staleness,
    StaticRandom, StaticScores, Statistic, Ucb, UcbBuilder, UniformRandom,
};
pub use pruner::{Pruner, PrunerBuilder};
pub use schedule::{Phase, Schedule};

/// The kept count of a prune fraction: [`select::keep_count`], which this re-stated.
#[deprecated(note = "use `dynaprune::select::keep_count`")]
pub fn keep_count(n: usize, prune_fraction: f64) -> Result<usize> {
    select::keep_count(n, prune_fraction)
}
pub use shard::PlanShard;
pub use state::PrunerState;
