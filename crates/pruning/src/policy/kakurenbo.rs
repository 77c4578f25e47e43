//! KAKURENBO (Nguyen et al., NeurIPS 2023, "KAKURENBO: Adaptively Hiding Samples in Deep Neural
//! Network Training").

use super::{Policy, SelectContext, Selection};
use crate::buffer::ScoreBuffer;
use crate::error::{check_closed, check_half_open, PruneError, Result};
use crate::rng::Rng;
use crate::select::{best_k, rank_key, BitSet};

/// KAKURENBO: each epoch, up to a fraction `F_e` of the samples with the lowest last loss are
/// *candidates* for hiding; a candidate is hidden only if the model predicted it correctly with
/// confidence (largest softmax probability) at least `tau`; the others are moved back into
/// training. Hidden samples still get a forward-only pass every epoch, so their loss and
/// prediction stay current ([`Policy::rescore_every`] is 1: the training loop runs that pass and
/// charges its cost). While samples are hidden the learning rate is scaled by `1 / (1 - F_e)`
/// ([`Selection::lr_factor`]).
///
/// `F_e` steps down with training progress: `F` for the first 30% of the epochs, then `0.8 F`,
/// `0.6 F` from 60% and `0.4 F` from 80%. This follows the reference code
/// (`adjust_fraction` in `TruongThaoNguyen/kakurenbo`, boundaries at epochs 60/120/160 of 200),
/// expressed as progress: *reconstructed* for runs of other lengths. The reference code takes the
/// softmax over the batch dimension when it measures confidence; we use each sample's own
/// softmax (largest class probability), which is what the paper describes. `tau = 0.7` and the
/// learning-rate rule are the reference code's.
///
/// **The learning-rate factor under a matched budget.** The reference code scales by the
/// *largest* fraction it may hide, `1 / (1 - F_e)`, whatever it actually hid; with its usual
/// `F` of about 0.3 that is at most 1.43x. When a budget-matched run sets `F` to the pruned-epoch
/// fraction (0.333 / 0.556 / 0.778 at 30/50/70% over 10 epochs), the factor reaches 1.5x / 2.25x
/// / 4.5x in the first pruned epochs although fewer samples were hidden (63% at 70% in our grid).
/// [`KakurenboLr::HiddenFraction`] scales by the fraction actually hidden that epoch,
/// `1 / (1 - hidden_e / n)`, instead: the same learning rate per trained sample as the reference
/// intends, without the boost. [`KakurenboLr::MaxFraction`] (the reference's) stays the default.
///
/// Needs predictions in the buffer: feed observations with
/// [`Pruner::observe_predictions`](crate::Pruner::observe_predictions). A sample with no
/// recorded prediction is never hidden.
#[derive(Debug, Clone)]
pub struct Kakurenbo {
    max_fraction: f64,
    tau: f64,
    lr: KakurenboLr,
}

/// Which fraction KAKURENBO's learning-rate factor `1 / (1 - x)` is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KakurenboLr {
    /// `x = F_e`, the largest fraction the epoch may hide: the reference code's rule.
    #[default]
    MaxFraction,
    /// `x = hidden_e / n`, the fraction actually hidden this epoch.
    HiddenFraction,
    /// No adjustment (factor 1).
    Off,
}

impl Kakurenbo {
    /// The reference code's confidence threshold.
    pub const DEFAULT_TAU: f64 = 0.7;
    /// The fraction schedule: `(progress from which it applies, multiplier of F)`.
    pub const FRACTION_STEPS: [(f64, f64); 4] = [(0.0, 1.0), (0.3, 0.8), (0.6, 0.6), (0.8, 0.4)];

    /// Hides up to `max_fraction` (in `[0, 1)`) of the samples per epoch.
    pub fn new(max_fraction: f64) -> Result<Self> {
        check_half_open("prune_fraction", max_fraction)?;
        Ok(Self { max_fraction, tau: Self::DEFAULT_TAU, lr: KakurenboLr::MaxFraction })
    }

    /// The confidence a correctly predicted candidate needs to stay hidden, in `[0, 1]`.
    pub fn with_tau(mut self, tau: f64) -> Result<Self> {
        check_closed("kakurenbo_tau", tau)?;
        self.tau = tau;
        Ok(self)
    }

    /// Whether to scale the learning rate by `1 / (1 - F_e)` (default `true`, as the paper):
    /// `false` is [`KakurenboLr::Off`], `true` [`KakurenboLr::MaxFraction`].
    pub fn with_lr_adjustment(mut self, on: bool) -> Self {
        self.lr = if on { KakurenboLr::MaxFraction } else { KakurenboLr::Off };
        self
    }

    /// Which fraction the learning-rate factor uses (see [`KakurenboLr`]).
    pub fn with_lr_rule(mut self, rule: KakurenboLr) -> Self {
        self.lr = rule;
        self
    }

    /// The learning-rate rule in force.
    pub fn lr_rule(&self) -> KakurenboLr {
        self.lr
    }

    /// `F_e`, the largest fraction hidden at training progress `progress` in `[0, 1)`.
    pub fn max_fraction_at(&self, progress: f64) -> f64 {
        let m = Self::FRACTION_STEPS.iter().rev().find(|(from, _)| progress >= *from).map_or(1.0, |s| s.1);
        self.max_fraction * m
    }
}

impl Policy for Kakurenbo {
    fn name(&self) -> &'static str {
        crate::catalog::KAKURENBO.name
    }
    fn prune_fraction(&self) -> f64 {
        self.max_fraction
    }
    fn rescore_every(&self) -> usize {
        1
    }
    fn select(&self, ctx: &SelectContext, buffer: &dyn ScoreBuffer, _: &mut Rng) -> Result<Selection> {
        let n = buffer.len();
        if n == 0 {
            return Err(PruneError::EmptyDataset);
        }
        let f = self.max_fraction_at(ctx.progress());
        // The reference code truncates: int(F * n).
        let cut = (f * n as f64) as usize;
        let recs = buffer.records();
        // The `cut` seen samples with the lowest last loss (ties: lower index first).
        let keys: Vec<u64> =
            recs.iter().enumerate().filter(|(_, r)| r.is_seen()).map(|(i, r)| rank_key(-r.last, i)).collect();
        let candidates = best_k(keys, cut);
        let tau = self.tau as f32;
        let hidden: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| recs[i].has_prediction() && recs[i].correct && recs[i].confidence >= tau)
            .collect();
        let hide = BitSet::from_indices(n, &hidden);
        let indices: Vec<usize> = (0..n).filter(|&i| !hide.contains(i)).collect();
        let hidden_fraction = hidden.len() as f64 / n as f64;
        let lr_factor = match self.lr {
            KakurenboLr::MaxFraction => Some(1.0 / (1.0 - f)),
            KakurenboLr::HiddenFraction => Some(1.0 / (1.0 - hidden_fraction)),
            KakurenboLr::Off => None,
        };
        Ok(Selection {
            indices,
            weights: None,
            notes: vec![
                ("max_hidden_fraction".into(), f),
                ("hidden_fraction".into(), hidden_fraction),
                ("moved_back".into(), (candidates.len() - hidden.len()) as f64),
            ],
            lr_factor,
        })
    }
}
