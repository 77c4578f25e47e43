//! The crate's error type.

/// Everything that can go wrong in this crate. Every public function that takes user input returns
/// this instead of panicking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// A fraction-like knob (`prune_fraction`, `epsilon`, ...) is outside its allowed range.
    #[error("invalid `{name}` = {value}: expected a value in {expected}")]
    InvalidKnob {
        /// The knob's name as it appears in the API.
        name: &'static str,
        /// The value that was given.
        value: f64,
        /// The allowed range, in words, e.g. `[0, 1)`.
        expected: &'static str,
    },
    /// A builder was asked to build without a knob that has no default.
    #[error("`{name}` was not set: it has no default (call `.{name}(..)` on the builder)")]
    MissingKnob {
        /// The knob's name as it appears in the API.
        name: &'static str,
    },
    /// A method label ([`crate::catalog::Method`]) that names no rule, or a variant that does not
    /// apply to its rule.
    #[error("method `{label}`: {why}")]
    InvalidMethod {
        /// The label as given.
        label: String,
        /// What is wrong, in words.
        why: String,
    },
    /// A policy or buffer was asked to work on zero samples.
    #[error("the dataset has no samples (n = 0): a pruning policy needs at least one sample")]
    EmptyDataset,
    /// An observed sample index is not below the number of samples.
    #[error("sample index {index} is out of range: the buffer holds {len} samples (indices 0..{len})")]
    IndexOutOfRange {
        /// The offending index.
        index: usize,
        /// The number of samples.
        len: usize,
    },
    /// `observe` got a different number of indices and values.
    #[error("observe got {indices} sample indices but {values} values: one value per index expected")]
    LengthMismatch {
        /// Number of indices.
        indices: usize,
        /// Number of values.
        values: usize,
    },
    /// An observed value is NaN or infinite.
    #[error("observed value {value} for sample {index} is not finite: a score must be a finite number (is the loss diverging?)")]
    NonFinite {
        /// The sample whose value was not finite.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A reported prediction confidence is not a probability in `(0, 1]`.
    #[error("prediction confidence {value} at position {position} of the batch is not a probability in (0, 1]: pass the largest softmax probability of each sample")]
    BadConfidence {
        /// Position within the observed batch.
        position: usize,
        /// The value.
        value: f32,
    },
    /// A static score vector does not have one score per sample.
    #[error("static scores have {got} entries but the dataset has {expected} samples")]
    ScoreCountMismatch {
        /// Number of samples.
        expected: usize,
        /// Number of scores given.
        got: usize,
    },
    /// A schedule is inconsistent (e.g. warm-up plus annealing longer than the run).
    #[error("invalid schedule: {0}")]
    InvalidSchedule(String),
    /// `plan` was called for an epoch outside the schedule.
    #[error("epoch {epoch} is outside the schedule of {epochs} epochs (epochs are numbered from 0)")]
    EpochOutOfRange {
        /// The epoch asked for.
        epoch: usize,
        /// The schedule's length.
        epochs: usize,
    },
    /// A plan was sharded for a rank outside `0..world`, or for a world of 0 ranks
    /// ([`crate::EpochPlan::shard`]).
    #[error("invalid shard: rank {rank} of world size {world}: {why}")]
    InvalidShard {
        /// The rank asked for.
        rank: usize,
        /// The world size asked for.
        world: usize,
        /// What is wrong, in words.
        why: &'static str,
    },
    /// Saved state could not be restored: a [`crate::PrunerState`], a buffer's records or a
    /// [`crate::BackpropSelector`]'s bytes that are damaged, foreign, or from a pruner with another
    /// sample count, seed or policy.
    #[error("cannot restore saved state: {0}")]
    BadState(String),
    /// [`crate::Pruner::plan`] was asked for an epoch at or before one it already planned.
    #[error("epoch {epoch} planned after epoch {last}: plan each epoch once, in increasing order")]
    EpochOrder {
        /// The epoch asked for.
        epoch: usize,
        /// The last epoch planned.
        last: usize,
    },
    /// A policy's selection breaks the [`crate::Policy`] contract: it is empty, names a sample
    /// twice, or asks for a learning-rate factor that is not finite and positive. A defect of the
    /// policy, not of the caller's input.
    #[error("invalid selection from the policy: {0}")]
    BadSelection(String),
}

/// Shorthand for this crate's results.
pub type Result<T, E = PruneError> = std::result::Result<T, E>;

/// Checks a fraction knob in `[0, 1)` (the usual range for `prune_fraction`).
pub(crate) fn check_half_open(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(PruneError::InvalidKnob { name, value, expected: "[0, 1)" })
    }
}

/// Checks a probability-like knob in `[0, 1]`.
pub(crate) fn check_closed(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(PruneError::InvalidKnob { name, value, expected: "[0, 1]" })
    }
}

/// Checks a knob that must be finite and non-negative.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(PruneError::InvalidKnob { name, value, expected: "[0, inf) (finite)" })
    }
}
