//! An epoch's plan: shuffled sample indices, optional loss weights, and its accounting.

use crate::schedule::Phase;

/// Accounting for one epoch's plan, ready to log.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStats {
    /// The epoch (from 0).
    pub epoch: usize,
    /// What the schedule did this epoch.
    pub phase: Phase,
    /// Dataset size.
    pub n: usize,
    /// Samples in the plan.
    pub kept: usize,
    /// Fraction of per-epoch sample passes saved compared with full data: `1 - kept / n`.
    pub saving: f64,
    /// Fraction of this plan's samples that were also in the previous epoch's plan (`None` for
    /// the first planned epoch).
    pub overlap_with_previous: Option<f64>,
    /// Sum of the loss weights (equals `kept` when unweighted).
    pub weight_sum: f64,
    /// Wall time spent building the plan (selection and shuffle), in seconds.
    pub plan_seconds: f64,
    /// Policy-specific facts (e.g. InfoBatch's threshold and drop probability).
    pub notes: Vec<(String, f64)>,
    /// Factor the training loop applies to its learning rate this epoch (1 unless the rule asks,
    /// as KAKURENBO does).
    pub lr_factor: f64,
    /// Samples in no pruned epoch's plan so far, this one included (`None` before the first
    /// pruned epoch).
    pub never_selected: Option<usize>,
    /// Fraction of the dataset in at least one pruned epoch's plan so far (`None` before the
    /// first pruned epoch).
    pub coverage: Option<f64>,
    /// Mean, over samples seen so far, of the whole epochs since each was last observed, when
    /// this plan was made (0 = every score is from the epoch just before).
    pub mean_staleness: f64,
    /// The largest such age.
    pub max_staleness: u32,
}

/// The samples of one epoch, in training order, with optional per-sample loss weights.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochPlan {
    pub(crate) indices: Vec<usize>,
    pub(crate) weights: Option<Vec<f32>>,
    pub(crate) stats: PlanStats,
}

impl EpochPlan {
    /// The sample indices in training order (shuffled, distinct).
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Per-sample loss weights aligned with [`EpochPlan::indices`]; `None` means all 1.
    pub fn weights(&self) -> Option<&[f32]> {
        self.weights.as_deref()
    }

    /// Number of samples in the plan.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// `true` if the plan holds no sample (never the case for plans built by a [`crate::Pruner`]).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The epoch's accounting.
    pub fn stats(&self) -> &PlanStats {
        &self.stats
    }

    /// The epoch's phase.
    pub fn phase(&self) -> Phase {
        self.stats.phase
    }

    /// The learning-rate factor the rule asks for this epoch (1 for most rules).
    pub fn lr_factor(&self) -> f64 {
        self.stats.lr_factor
    }

    /// Consecutive batches of at most `batch_size` samples (the last may be smaller).
    ///
    /// # Panics
    /// If `batch_size` is 0, like [`slice::chunks`].
    pub fn batches(&self, batch_size: usize) -> impl ExactSizeIterator<Item = PlanBatch<'_>> + '_ {
        batches(&self.indices, self.weights.as_deref(), batch_size)
    }

    /// Takes the plan apart: `(indices, weights, stats)`.
    pub fn into_parts(self) -> (Vec<usize>, Option<Vec<f32>>, PlanStats) {
        (self.indices, self.weights, self.stats)
    }
}

/// Consecutive batches of at most `batch_size` of `indices` and their `weights` (a plan's, or a
/// shard's).
pub(crate) fn batches<'a>(
    indices: &'a [usize],
    weights: Option<&'a [f32]>,
    batch_size: usize,
) -> impl ExactSizeIterator<Item = PlanBatch<'a>> + 'a {
    assert!(batch_size > 0, "batch_size must be at least 1");
    let n = indices.len();
    (0..n.div_ceil(batch_size)).map(move |b| {
        let lo = b * batch_size;
        let hi = (lo + batch_size).min(n);
        PlanBatch { indices: &indices[lo..hi], weights: weights.map(|w| &w[lo..hi]) }
    })
}

/// One batch of a plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanBatch<'a> {
    /// Sample indices of this batch.
    pub indices: &'a [usize],
    /// Their loss weights, if the policy weights samples.
    pub weights: Option<&'a [f32]>,
}

impl PlanBatch<'_> {
    /// The weighted mean of per-sample `losses` (aligned with `indices`):
    /// `sum(w_i * loss_i) / len`. This is the InfoBatch convention: the denominator is the batch
    /// size, so up-weighted survivors keep the expected gradient of the full batch unchanged.
    pub fn weighted_mean(&self, losses: &[f32]) -> f32 {
        if losses.is_empty() {
            return 0.0;
        }
        let sum: f32 = match self.weights {
            Some(w) => losses.iter().zip(w).map(|(l, w)| l * w).sum(),
            None => losses.iter().sum(),
        };
        sum / losses.len() as f32
    }
}
