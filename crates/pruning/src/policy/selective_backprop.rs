//! Selective-Backprop (Jiang et al., 2019, "Accelerating Deep Learning by Focusing on the Biggest
//! Losers"): batch-level online selection by loss percentile.

use std::collections::VecDeque;

use super::{Policy, SelectContext, Selection};
use crate::buffer::ScoreBuffer;
use crate::error::{check_closed, check_half_open, PruneError, Result};
use crate::rng::{stream, Rng};

/// Selective-Backprop: every sample of an epoch gets a forward pass (a *candidate* pass); each
/// candidate's loss joins a history of the last `history` losses, and the candidate is kept with
/// probability `max(floor, percentile^beta)`, its loss's percentile rank in that history (in
/// `[0, 1]`, scipy's `percentileofscore(kind="rank")` / 100). Kept samples queue up and are
/// trained on (forward and backward) a full batch at a time.
///
/// As an epoch-level [`Policy`] it plans every sample (the candidates); the per-batch choice is a
/// [`BackpropSelector`], which the training loop drives: the crate holds the history and the
/// probabilities, the loop runs the two passes and charges the candidate passes' time.
///
/// After the authors' code (`RelativeProbabilityCalculator` in `angelajiang/SelectiveBackprop`):
/// history length 1024, `beta` its `prob_pow`, `floor` its `sampling_min`, the history updated
/// with each loss before its percentile is taken. *Reconstructed*: the exponent that matches a
/// budget. With percentiles uniform on `[0, 1]`, a sample is kept with probability
/// `E[U^beta] = 1 / (1 + beta)`, so [`SelectiveBackprop::for_prune_fraction`] sets
/// `beta = f / (1 - f)` to remove `f` of the training passes in expectation (`f = 0.5` is the
/// paper's `beta = 1`; `beta = 2, 3` remove 2/3 and 3/4). The passes actually trained vary
/// around that (a binomial draw, and percentiles drift as the losses fall); every epoch reports
/// them. The reference primes the selector with a full-data start (its first 50,000 images);
/// here that is the schedule's `--warmup-epochs`, 0 by default.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectiveBackprop {
    beta: f64,
    history: usize,
    floor: f64,
}

impl SelectiveBackprop {
    /// The authors' history length.
    pub const DEFAULT_HISTORY: usize = 1024;

    /// Keep probability `percentile^beta`, `beta >= 0` finite (0 keeps everything).
    pub fn new(beta: f64) -> Result<Self> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(PruneError::InvalidKnob { name: "sb_beta", value: beta, expected: "[0, inf) (finite)" });
        }
        Ok(Self { beta, history: Self::DEFAULT_HISTORY, floor: 0.0 })
    }

    /// The exponent that removes `prune_fraction` (in `[0, 1)`) of the training passes in
    /// expectation: `beta = f / (1 - f)`.
    pub fn for_prune_fraction(prune_fraction: f64) -> Result<Self> {
        check_half_open("prune_fraction", prune_fraction)?;
        Self::new(prune_fraction / (1.0 - prune_fraction))
    }

    /// Percentiles over the last `history` (`>= 1`) losses.
    pub fn with_history(mut self, history: usize) -> Result<Self> {
        if history == 0 {
            return Err(PruneError::InvalidKnob { name: "sb_history", value: 0.0, expected: "an integer >= 1" });
        }
        self.history = history;
        Ok(self)
    }

    /// The smallest keep probability, in `[0, 1]` (the authors' `sampling_min`).
    pub fn with_floor(mut self, floor: f64) -> Result<Self> {
        check_closed("sb_floor", floor)?;
        self.floor = floor;
        Ok(self)
    }

    /// The exponent.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The history length.
    pub fn history(&self) -> usize {
        self.history
    }

    /// The smallest keep probability.
    pub fn floor(&self) -> f64 {
        self.floor
    }

    /// The fraction of passes kept in expectation, with uniform percentiles and no floor:
    /// `1 / (1 + beta)`.
    pub fn expected_keep(&self) -> f64 {
        1.0 / (1.0 + self.beta)
    }

    /// A fresh selector whose draws come from `seed` (use the pruner's seed: one seed fixes the
    /// run).
    pub fn selector(&self, seed: u64) -> BackpropSelector {
        BackpropSelector { rule: self.clone(), seed, batches: 0, order: VecDeque::new(), sorted: Vec::new() }
    }
}

impl Policy for SelectiveBackprop {
    fn name(&self) -> &'static str {
        crate::catalog::SELECTIVE_BACKPROP.name
    }
    fn prune_fraction(&self) -> f64 {
        1.0 - self.expected_keep()
    }
    fn uses_scores(&self) -> bool {
        false
    }
    fn select(&self, _: &SelectContext, buffer: &dyn ScoreBuffer, _: &mut Rng) -> Result<Selection> {
        // Every sample is a candidate; the batch-level choice is the selector's.
        Ok(Selection { indices: (0..buffer.len()).collect(), ..Selection::default() })
    }
}

/// The state of Selective-Backprop's per-batch choice: the loss history and the number of
/// candidate batches seen (candidate batch `j` draws from the stream `(seed,
/// "selective-backprop", j)`, so a resumed selector continues exactly). Save it with
/// [`BackpropSelector::to_bytes`].
#[derive(Debug, Clone, PartialEq)]
pub struct BackpropSelector {
    rule: SelectiveBackprop,
    seed: u64,
    batches: u64,
    /// The history in arrival order (oldest first).
    order: VecDeque<f32>,
    /// The same values, sorted.
    sorted: Vec<f32>,
}

impl BackpropSelector {
    /// The percentile rank of `loss` in the current history, in `[0, 1]`: scipy's
    /// `percentileofscore(history, loss, kind="rank") / 100` (ties share the mean rank). 1 for
    /// an empty history.
    pub fn percentile(&self, loss: f32) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 1.0;
        }
        let left = self.sorted.partition_point(|&x| x < loss);
        let right = self.sorted.partition_point(|&x| x <= loss);
        (left + right + usize::from(left < right)) as f64 / (2 * n) as f64
    }

    /// The probability of keeping a sample whose loss has percentile `p`: `max(floor, p^beta)`.
    pub fn keep_probability(&self, p: f64) -> f64 {
        p.powf(self.rule.beta).max(self.rule.floor)
    }

    /// Chooses among one candidate batch: each loss in order joins the history, then is kept with
    /// its probability. Returns the kept positions (into `losses`), ascending; an empty result
    /// is allowed (nothing to train from this batch: the candidates still count as forward
    /// passes). Errors on a non-finite loss, before anything changes.
    pub fn select(&mut self, losses: &[f32]) -> Result<Vec<usize>> {
        if let Some((position, &value)) = losses.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(PruneError::NonFinite { index: position, value });
        }
        let mut rng = stream(self.seed, "selective-backprop", self.batches);
        self.batches += 1;
        let mut kept = Vec::with_capacity(losses.len());
        for (pos, &loss) in losses.iter().enumerate() {
            self.push(loss);
            let p = self.keep_probability(self.percentile(loss));
            if uniform(&mut rng) < p {
                kept.push(pos);
            }
        }
        Ok(kept)
    }

    fn push(&mut self, loss: f32) {
        if self.order.len() == self.rule.history {
            let old = self.order.pop_front().expect("a full history is not empty");
            let at = self.sorted.partition_point(|&x| x < old);
            self.sorted.remove(at);
        }
        self.order.push_back(loss);
        let at = self.sorted.partition_point(|&x| x <= loss);
        self.sorted.insert(at, loss);
    }

    /// Candidate batches seen so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = f32> + '_ {
        self.order.iter().copied()
    }

    /// The state as bytes: a magic tag, the candidate-batch count, the history (little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(24 + 4 * self.order.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.batches.to_le_bytes());
        b.extend_from_slice(&(self.order.len() as u64).to_le_bytes());
        for &x in &self.order {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Restores the state written by [`BackpropSelector::to_bytes`] into this selector (same
    /// rule and seed); a damaged or foreign file is a [`PruneError::BadState`].
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let bad = |why: &str| PruneError::BadState(format!("Selective-Backprop selector: {why}"));
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("not a selector state (wrong magic)"))?;
        if rest.len() < 16 {
            return Err(bad("truncated header"));
        }
        let batches = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
        let body = &rest[16..];
        if len > self.rule.history as u64 || body.len() as u64 != 4 * len {
            return Err(bad(&format!(
                "{len} history entries in {} bytes, for a history of at most {}",
                body.len(),
                self.rule.history
            )));
        }
        let values: Vec<f32> =
            body.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(bad("a non-finite loss in the history"));
        }
        self.order = values.iter().copied().collect();
        self.sorted = values;
        self.sorted.sort_by(f32::total_cmp);
        self.batches = batches;
        Ok(())
    }
}

const MAGIC: &[u8; 8] = b"DPSBSEL1";

/// A uniform draw in `[0, 1)` with 53 random bits.
fn uniform(rng: &mut Rng) -> f64 {
    use rand::RngCore as _;
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}
