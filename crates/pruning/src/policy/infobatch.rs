//! InfoBatch (Qin et al., ICLR 2024): soft pruning with loss rescaling and annealing.

use super::{Policy, SelectContext, Selection, Statistic};
use crate::buffer::ScoreBuffer;
use crate::error::{check_half_open, PruneError, Result};
use crate::rng::Rng;
use crate::select::sample;

/// How InfoBatch's drop probability `r` is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InfoBatchRate {
    /// A fixed `r` in `[0, 1)`, as in the paper (its `ratio`, default 0.5). The fraction of the
    /// dataset actually removed is `r` times the fraction of samples below the mean score, so it
    /// varies by epoch; every plan reports it.
    DropProbability(f64),
    /// Choose `r` each selection so that the expected removed fraction of the whole dataset is
    /// `prune_fraction`: `r = prune_fraction / (fraction below the mean)`, capped at
    /// `max_drop_probability`. When the cap binds, the plan's notes say so (`capped = 1`) and
    /// report the fraction actually removed; nothing is clamped silently.
    TargetPruneFraction {
        /// Target fraction of the dataset removed, in `[0, 1)`.
        prune_fraction: f64,
        /// Upper bound on `r`, in `[0, 1)`: survivors get weight `1 / (1 - r)`, so `r` near 1
        /// would blow up the loss scale.
        max_drop_probability: f64,
    },
}

/// InfoBatch: samples whose score is below the mean score are "well learned"; each of them is
/// dropped with probability `r` (exactly `round(r * count)` of them are dropped, chosen uniformly),
/// and the survivors of that group get loss weight `1 / (1 - r)` so the expected gradient is
/// unchanged. Samples at or above the mean, and never-seen samples, are always kept with weight 1.
/// Annealing (full data for the last `1 - delta` of the epochs, weights back to 1) is the
/// [`Schedule`](crate::Schedule)'s job: use [`Schedule::anneal_fraction`](crate::Schedule::anneal_fraction)`(1 - delta)`,
/// with the paper's `delta = 0.875`.
///
/// Differences from the reference implementation, on purpose: no global reseeding (each
/// selection uses its own stream), the annealing switch is an integer epoch comparison (no float
/// equality), the threshold ignores never-seen samples instead of relying on a large initial
/// score, and an unreachable target is reported rather than clamped silently.
#[derive(Debug, Clone)]
pub struct InfoBatch {
    rate: InfoBatchRate,
    statistic: Statistic,
}

impl InfoBatch {
    /// The paper's default drop probability.
    pub const DEFAULT_DROP_PROBABILITY: f64 = 0.5;
    /// The paper's default annealing point: full data after this fraction of the epochs
    /// ([`crate::catalog::INFOBATCH_DELTA`]).
    pub const DEFAULT_DELTA: f64 = crate::catalog::INFOBATCH_DELTA;
    /// The default cap on the drop probability when it is solved for a target prune fraction
    /// ([`InfoBatchRate::TargetPruneFraction`]; reconstructed: InfoBatch itself has no target mode).
    pub const DEFAULT_MAX_DROP_PROBABILITY: f64 = 0.9;

    /// The paper's rule: each below-mean sample is dropped with the fixed probability `r` in
    /// `[0, 1)` (its `ratio`), so the fraction of the data removed varies by epoch.
    pub fn from_drop_probability(drop_probability: f64) -> Result<Self> {
        Self::from_rate(InfoBatchRate::DropProbability(drop_probability))
    }

    /// InfoBatch held to a prune fraction like the other rules: the drop probability is solved at
    /// each selection so that `prune_fraction` (in `[0, 1)`) of the data is removed, capped at
    /// [`Self::DEFAULT_MAX_DROP_PROBABILITY`] ([`InfoBatchRate::TargetPruneFraction`] sets
    /// another cap).
    pub fn from_prune_fraction(prune_fraction: f64) -> Result<Self> {
        Self::from_rate(InfoBatchRate::TargetPruneFraction {
            prune_fraction,
            max_drop_probability: Self::DEFAULT_MAX_DROP_PROBABILITY,
        })
    }

    /// InfoBatch with either rate rule.
    pub fn from_rate(rate: InfoBatchRate) -> Result<Self> {
        match rate {
            InfoBatchRate::DropProbability(r) => check_half_open("drop_probability", r)?,
            InfoBatchRate::TargetPruneFraction { prune_fraction, max_drop_probability } => {
                check_half_open("prune_fraction", prune_fraction)?;
                check_half_open("max_drop_probability", max_drop_probability)?;
            }
        }
        Ok(Self { rate, statistic: Statistic::Last })
    }

    /// InfoBatch with a fixed drop probability `r` in `[0, 1)`.
    #[deprecated(
        note = "the argument is a drop probability, not a prune fraction: use `InfoBatch::from_drop_probability`"
    )]
    pub fn new(drop_probability: f64) -> Result<Self> {
        Self::from_drop_probability(drop_probability)
    }

    /// InfoBatch with either rate rule.
    #[deprecated(note = "a constructor, not a modifier: use `InfoBatch::from_rate`")]
    pub fn with_rate(rate: InfoBatchRate) -> Result<Self> {
        Self::from_rate(rate)
    }

    /// Ranks by this statistic (default: the last value, as the reference implementation does).
    pub fn with_statistic(mut self, statistic: Statistic) -> Self {
        self.statistic = statistic;
        self
    }
}

impl Policy for InfoBatch {
    fn name(&self) -> &'static str {
        crate::catalog::INFOBATCH.name
    }
    fn prune_fraction(&self) -> f64 {
        match self.rate {
            InfoBatchRate::DropProbability(r) => r,
            InfoBatchRate::TargetPruneFraction { prune_fraction, .. } => prune_fraction,
        }
    }
    fn select(&self, _: &SelectContext, buffer: &dyn ScoreBuffer, rng: &mut Rng) -> Result<Selection> {
        let n = buffer.len();
        if n == 0 {
            return Err(PruneError::EmptyDataset);
        }
        // One pass over the records: each sample's score (NaN marks never-seen) and the mean.
        let stat = self.statistic;
        let scores: Vec<f32> =
            buffer.records().iter().map(|r| if r.is_seen() { stat.of(r) } else { f32::NAN }).collect();
        let (sum, seen) = sum_finite(&scores);
        if seen == 0 {
            return Ok(Selection {
                indices: (0..n).collect(),
                notes: vec![("seen".into(), 0.0)],
                ..Selection::default()
            });
        }
        let mean = sum / seen as f64;
        // Kept for sure: never-seen samples and those at or above the mean; candidates: below it.
        let mut sure = Vec::with_capacity(n);
        let mut low = Vec::with_capacity(n / 2);
        for (i, &v) in scores.iter().enumerate() {
            // NaN (never seen) compares false, so it lands in `sure`.
            if f64::from(v) < mean {
                low.push(i);
            } else {
                sure.push(i);
            }
        }
        let frac_low = low.len() as f64 / n as f64;
        let (r, capped) = match self.rate {
            InfoBatchRate::DropProbability(r) => (r, false),
            InfoBatchRate::TargetPruneFraction { prune_fraction, max_drop_probability } => {
                if frac_low == 0.0 {
                    (0.0, prune_fraction > 0.0)
                } else {
                    let want = prune_fraction / frac_low;
                    (want.min(max_drop_probability), want > max_drop_probability)
                }
            }
        };
        let keep_low = ((1.0 - r) * low.len() as f64).round() as usize;
        let survivors = sample(low, keep_low, rng);
        let w = (1.0 / (1.0 - r)) as f32;
        let mut indices = sure;
        let mut weights = vec![1.0f32; indices.len()];
        indices.extend(&survivors);
        weights.resize(indices.len(), w);
        let removed = (n - indices.len()) as f64 / n as f64;
        Ok(Selection {
            indices,
            weights: Some(weights),
            notes: vec![
                ("threshold".into(), mean),
                ("fraction_below_threshold".into(), frac_low),
                ("drop_probability".into(), r),
                ("capped".into(), if capped { 1.0 } else { 0.0 }),
                ("fraction_removed".into(), removed),
            ],
            lr_factor: None,
        })
    }
}

/// Sum (in f64, with independent accumulators so the loop is not latency-bound) and count of the
/// non-NaN entries.
fn sum_finite(xs: &[f32]) -> (f64, usize) {
    let mut acc = [0.0f64; 4];
    let mut cnt = [0usize; 4];
    let chunks = xs.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            let ok = !c[k].is_nan();
            acc[k] += if ok { f64::from(c[k]) } else { 0.0 };
            cnt[k] += usize::from(ok);
        }
    }
    for &x in tail {
        if !x.is_nan() {
            acc[0] += f64::from(x);
            cnt[0] += 1;
        }
    }
    (acc.iter().sum(), cnt.iter().sum())
}
