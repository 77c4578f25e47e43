//! # dynaprune — dynamic data pruning for any training loop
//!
//! Train on fewer samples per epoch, chosen while training runs. This crate holds the selection
//! rules and nothing else: sample indices in, plans (indices + optional loss weights) out. It has
//! no tensor library and no framework types, so it plugs into any training loop, in Rust or
//! behind an FFI.
//!
//! ```
//! use dynaprune::{Pruner, Schedule, Ucb};
//!
//! # fn train_step(indices: &[usize], weights: Option<&[f32]>) -> Vec<f32> { indices.iter().map(|&i| (i % 7) as f32).collect() }
//! # fn main() -> Result<(), dynaprune::PruneError> {
//! let (n_samples, epochs) = (1_000, 10);
//! let mut pruner = Pruner::builder(n_samples)
//!     .policy(Ucb::new(0.5, 1.0)?)                       // remove 50% per epoch, UCB with c = 1
//!     .schedule(Schedule::new(epochs).warmup(1).anneal(1)) // full data first and last epoch
//!     .seed(42)
//!     .build()?;
//! for epoch in 0..epochs {
//!     let plan = pruner.plan(epoch)?;                       // 1. this epoch's samples
//!     for batch in plan.batches(128) {
//!         let losses = train_step(batch.indices, batch.weights); // your step: per-sample losses
//!         pruner.observe(batch.indices, &losses)?;          // 2. feed the scores back
//!     }
//!     assert!(plan.len() == n_samples || plan.len() == 500);
//! }
//! # Ok(()) }
//! ```
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
//!   hashes ([`rng::mix64`], [`rng::fnv1a`]) are the workspace's only ones.
//! - [`io`]: [`io::write_atomic`], the workspace's one atomic file write.
//!
//! ## Conventions
//! - `prune_fraction` is always the fraction of samples **removed**; hard rules keep exactly
//!   `round((1 - prune_fraction) * n)` samples.
//! - Weighted losses follow InfoBatch: `sum(w_i * loss_i) / batch_len`
//!   ([`PlanBatch::weighted_mean`]).
//! - Invalid knobs return a [`PruneError`]; nothing in the public API panics on bad input except
//!   [`EpochPlan::batches`] with a batch size of 0 (as [`slice::chunks`]).
//! - *Reconstructed* defaults (the paper does not publish them): per-sample cross-entropy loss as
//!   the score, EMA decay 0.9 (0.5 for epsilon-greedy), epsilon 0.2, UCB `c = 1.0`, and the
//!   [`Staleness`] model (retention 0.5, drift 0.1) chosen by measurement. All are knobs.

pub mod buffer;
pub mod catalog;
mod error;
pub mod io;
pub mod plan;
pub mod policy;
pub mod pruner;
pub mod rng;
pub mod schedule;
mod select;
pub mod shard;
pub mod state;

pub use buffer::{EmaBuffer, LastValueBuffer, SampleStats, ScoreBuffer};
pub use error::{PruneError, Result};
pub use plan::{EpochPlan, PlanBatch, PlanStats};
pub use policy::{
    BackpropSelector, EpsilonDecay, EpsilonGreedy, FullData, InfoBatch, InfoBatchRate, Kakurenbo, KakurenboLr, Keep,
    Policy, Rs2, SelectContext, Selection, SelectiveBackprop, Seta, SetaBudget, Staleness, StaticRandom, StaticScores,
    Statistic, Ucb, UniformRandom,
};
pub use pruner::{Pruner, PrunerBuilder};
pub use schedule::{Phase, Schedule};
pub use select::keep_count;
pub use shard::PlanShard;
pub use state::PrunerState;

/// The crate README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
