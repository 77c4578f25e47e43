//! Static pruning: one selection made before training from externally computed scores (EL2N,
//! GraNd, forgetting counts, ...) or at random, and kept for every pruned epoch.

use super::{Policy, SelectContext, Selection};
use crate::buffer::ScoreBuffer;
use crate::error::{check_half_open, PruneError, Result};
use crate::rng::Rng;
use crate::select::{keep_count, random_subset, top_k};

/// Which part of the score ranking a static policy keeps.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Keep {
    /// The highest scores ("hardest" samples for EL2N/GraNd/forgetting): the usual choice.
    #[default]
    Highest,
    /// The lowest scores ("easiest").
    Lowest,
    /// Skip the `skip_fraction` highest-scoring samples (often noisy or mislabelled), then keep
    /// the next ones (the offset window of "Deep Learning on a Data Diet").
    Window {
        /// Fraction of the dataset skipped from the top, in `[0, 1)`.
        skip_fraction: f64,
    },
}

/// Keeps a fixed part of an externally supplied score vector (one score per sample).
#[derive(Debug, Clone)]
pub struct StaticScores {
    name: &'static str,
    scores: Vec<f32>,
    keep: Keep,
    prune_fraction: f64,
}

impl StaticScores {
    /// `scores[i]` is sample `i`'s score; `+inf` is allowed (e.g. never-learned samples in
    /// forgetting counts), NaN is not.
    pub fn new(scores: Vec<f32>, keep: Keep, prune_fraction: f64) -> Result<Self> {
        check_half_open("prune_fraction", prune_fraction)?;
        if scores.is_empty() {
            return Err(PruneError::EmptyDataset);
        }
        if let Some(index) = scores.iter().position(|s| s.is_nan()) {
            return Err(PruneError::NonFinite { index, value: f32::NAN });
        }
        if let Keep::Window { skip_fraction } = keep {
            check_half_open("skip_fraction", skip_fraction)?;
            let n = scores.len();
            let skip = (skip_fraction * n as f64).round() as usize;
            if skip + keep_count(n, prune_fraction)? > n {
                return Err(PruneError::InvalidKnob {
                    name: "skip_fraction",
                    value: skip_fraction,
                    expected: "skip_fraction + (1 - prune_fraction) <= 1",
                });
            }
        }
        Ok(Self { name: "static-scores", scores, keep, prune_fraction })
    }

    /// Names the policy after its scorer (`"el2n"`, `"grand"`, `"forgetting"`).
    pub fn with_name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The scores this policy ranks.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl Policy for StaticScores {
    fn name(&self) -> &'static str {
        self.name
    }
    fn is_dynamic(&self) -> bool {
        false
    }
    fn sample_count(&self) -> Option<usize> {
        Some(self.scores.len())
    }
    fn uses_scores(&self) -> bool {
        false
    }
    fn prune_fraction(&self) -> f64 {
        self.prune_fraction
    }
    fn select(&self, _: &SelectContext, buffer: &dyn ScoreBuffer, _: &mut Rng) -> Result<Selection> {
        let n = buffer.len();
        if self.scores.len() != n {
            return Err(PruneError::ScoreCountMismatch { expected: n, got: self.scores.len() });
        }
        let k = keep_count(n, self.prune_fraction)?;
        let all: Vec<usize> = (0..n).collect();
        let s = &self.scores;
        let indices = match self.keep {
            Keep::Highest => top_k(&all, k, |i| s[i]),
            Keep::Lowest => top_k(&all, k, |i| -s[i]),
            Keep::Window { skip_fraction } => {
                let skip = (skip_fraction * n as f64).round() as usize;
                let mut skipped = crate::select::BitSet::new(n);
                for i in top_k(&all, skip, |i| s[i]) {
                    skipped.insert(i);
                }
                let rest: Vec<usize> = all.into_iter().filter(|&i| !skipped.contains(i)).collect();
                top_k(&rest, k, |i| s[i])
            }
        };
        Ok(Selection { indices, ..Selection::default() })
    }
}

/// Static random pruning: one uniformly random subset, chosen at the first pruned epoch and kept.
#[derive(Debug, Clone)]
pub struct StaticRandom {
    prune_fraction: f64,
}

impl StaticRandom {
    /// Removes `prune_fraction` of the samples, once.
    pub fn new(prune_fraction: f64) -> Result<Self> {
        check_half_open("prune_fraction", prune_fraction)?;
        Ok(Self { prune_fraction })
    }
}

impl Policy for StaticRandom {
    fn name(&self) -> &'static str {
        crate::catalog::STATIC_RANDOM.name
    }
    fn is_dynamic(&self) -> bool {
        false
    }
    fn uses_scores(&self) -> bool {
        false
    }
    fn prune_fraction(&self) -> f64 {
        self.prune_fraction
    }
    fn select(&self, _: &SelectContext, buffer: &dyn ScoreBuffer, rng: &mut Rng) -> Result<Selection> {
        Ok(Selection { indices: random_subset(buffer.len(), self.prune_fraction, rng)?, ..Selection::default() })
    }
}
