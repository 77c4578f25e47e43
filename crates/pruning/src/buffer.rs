//! Per-sample score statistics: the [`ScoreBuffer`] trait and its two implementations.
//!
//! A buffer is fed `(sample index, value)` observations, typically each sample's loss right after
//! the step that used it, and keeps, per sample, one [`SampleStats`] record: the last value, a
//! running mean, a running variance, the number of observations, the epoch of the last one and,
//! when the caller reports them ([`ScoreBuffer::observe_predictions`]), whether the last prediction
//! was right and how confident it was (KAKURENBO needs both).
//! Records are stored contiguously (28 bytes each, checked at compile time), so an observation
//! touches one cache line, or two adjacent ones when a record straddles a boundary: training
//! feeds observations in shuffled order, and at ImageNet scale a column-per-field layout would
//! miss the cache up to seven times per update.
//!
//! A sample that was never observed has `count == 0`; [`ScoreBuffer::get`] returns `None` for it,
//! which is how "unseen" is told apart from "seen with score 0".

use crate::error::{check_half_open, PruneError, Result};

/// The statistics of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C)]
pub struct SampleStats {
    /// The most recent observed value.
    pub last: f32,
    /// The running mean (exponential moving average for [`EmaBuffer`], the last value for
    /// [`LastValueBuffer`]).
    pub mean: f32,
    /// The running variance (0 until the second observation).
    pub variance: f32,
    /// How many values were observed (0 = never seen).
    pub count: u32,
    /// The epoch of the most recent observation.
    pub last_epoch: u32,
    /// The model's confidence (largest softmax probability) at the most recent observation that
    /// reported a prediction; 0 until one does (a real confidence is at least `1 / classes`).
    pub confidence: f32,
    /// Whether that prediction was right (`false` until an observation reports one).
    pub correct: bool,
}

// The size the module documentation states: six 4-byte fields and a flag, padded to 4 bytes.
const _: () = assert!(std::mem::size_of::<SampleStats>() == 28);

impl SampleStats {
    /// The standard deviation, `sqrt(variance)`.
    pub fn std(&self) -> f32 {
        self.variance.max(0.0).sqrt()
    }

    /// `true` if the sample was observed at least once.
    pub fn is_seen(&self) -> bool {
        self.count > 0
    }

    /// `true` once an observation reported a prediction for this sample.
    pub fn has_prediction(&self) -> bool {
        self.confidence > 0.0
    }

    /// Whole epochs since the sample was last observed, as seen when planning `epoch`: 0 for a
    /// sample observed in the epoch just before (or later), `None` for a never-seen sample.
    #[inline]
    pub fn age(&self, epoch: usize) -> Option<u32> {
        self.is_seen().then(|| epoch_u32(epoch).saturating_sub(self.last_epoch).saturating_sub(1))
    }
}

/// Per-sample statistics fed with observations. Policies only see this trait.
pub trait ScoreBuffer: std::fmt::Debug + Send + Sync {
    /// Number of samples the buffer tracks (indices `0..len`).
    fn len(&self) -> usize {
        self.records().len()
    }

    /// `true` when the buffer tracks no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records one value per index, all at `epoch`. Validates everything before changing anything:
    /// on error the buffer is untouched.
    fn observe(&mut self, epoch: usize, indices: &[usize], values: &[f32]) -> Result<()>;

    /// Like [`ScoreBuffer::observe`], and also records each sample's prediction: whether it was
    /// right and its confidence (the largest softmax probability, in `(0, 1]`). Validates
    /// everything first. The default implementation, for buffers written before this method
    /// existed, records the values and ignores the predictions.
    fn observe_predictions(
        &mut self,
        epoch: usize,
        indices: &[usize],
        values: &[f32],
        correct: &[bool],
        confidence: &[f32],
    ) -> Result<()> {
        validate_predictions(indices.len(), correct, confidence)?;
        self.observe(epoch, indices, values)
    }

    /// Every sample's record, read-only (policies scan these); unseen samples have `count == 0`.
    fn records(&self) -> &[SampleStats];

    /// Replaces all records (used when resuming). The length must match [`ScoreBuffer::len`].
    fn restore(&mut self, records: Vec<SampleStats>) -> Result<()>;

    /// The statistics of one sample, or `None` if it was never observed (or is out of range).
    fn get(&self, index: usize) -> Option<SampleStats> {
        self.records().get(index).copied().filter(SampleStats::is_seen)
    }

    /// Number of samples observed at least once.
    fn seen(&self) -> usize {
        self.records().iter().filter(|r| r.is_seen()).count()
    }
}

/// Validates a batch of observations against a buffer of `len` samples.
fn validate(len: usize, indices: &[usize], values: &[f32]) -> Result<()> {
    if indices.len() != values.len() {
        return Err(PruneError::LengthMismatch { indices: indices.len(), values: values.len() });
    }
    for (&index, &value) in indices.iter().zip(values) {
        if index >= len {
            return Err(PruneError::IndexOutOfRange { index, len });
        }
        if !value.is_finite() {
            return Err(PruneError::NonFinite { index, value });
        }
    }
    Ok(())
}

/// Validates the prediction half of an observation: one flag and one confidence per index, each
/// confidence a probability in `(0, 1]`.
pub(crate) fn validate_predictions(len: usize, correct: &[bool], confidence: &[f32]) -> Result<()> {
    if correct.len() != len || confidence.len() != len {
        return Err(PruneError::LengthMismatch { indices: len, values: correct.len().min(confidence.len()) });
    }
    if let Some((k, &c)) = confidence.iter().enumerate().find(|(_, c)| !(c.is_finite() && **c > 0.0 && **c <= 1.0)) {
        return Err(PruneError::BadConfidence { position: k, value: c });
    }
    Ok(())
}

/// The buffers of this module, whose records can be written in place.
trait RecordsMut {
    fn records_mut(&mut self) -> &mut [SampleStats];
}

impl RecordsMut for EmaBuffer {
    fn records_mut(&mut self) -> &mut [SampleStats] {
        &mut self.records
    }
}

impl RecordsMut for LastValueBuffer {
    fn records_mut(&mut self) -> &mut [SampleStats] {
        &mut self.records
    }
}

/// [`ScoreBuffer::observe_predictions`] for this module's buffers: validates everything, records
/// the values as `observe` does, then each sample's prediction.
fn observe_with_predictions<B: ScoreBuffer + RecordsMut>(
    b: &mut B,
    epoch: usize,
    indices: &[usize],
    values: &[f32],
    correct: &[bool],
    confidence: &[f32],
) -> Result<()> {
    validate(b.len(), indices, values)?;
    validate_predictions(indices.len(), correct, confidence)?;
    b.observe(epoch, indices, values)?;
    let records = b.records_mut();
    for ((&i, &ok), &c) in indices.iter().zip(correct).zip(confidence) {
        records[i].correct = ok;
        records[i].confidence = c;
    }
    Ok(())
}

/// How many observations ahead `observe` prefetches: observations arrive in shuffled order, so
/// at ImageNet scale nearly every update misses the cache; prefetching overlaps those misses.
const PREFETCH_DISTANCE: usize = 16;

#[inline(always)]
fn prefetch(records: &[SampleStats], index: Option<&usize>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = index.and_then(|&i| records.get(i)) {
        // SAFETY: `_mm_prefetch` is a hint; the pointer comes from a valid reference.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((r as *const SampleStats).cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (records, index);
}

fn epoch_u32(epoch: usize) -> u32 {
    u32::try_from(epoch).unwrap_or(u32::MAX)
}

fn restore_into(dst: &mut Vec<SampleStats>, src: Vec<SampleStats>) -> Result<()> {
    if src.len() != dst.len() {
        return Err(PruneError::BadState(format!("saved buffer has {} samples, this one {}", src.len(), dst.len())));
    }
    *dst = src;
    Ok(())
}

/// Exponential moving averages of each sample's mean and variance.
///
/// With decay `beta` and a new value `x`, following the usual exponentially weighted moving
/// variance (Finch, 2009):
/// `d = x - mean; mean += (1 - beta) * d; var = beta * (var + (1 - beta) * d * d)`.
/// The first observation sets `mean = x`, `var = 0`. `beta = 0` keeps only the last value.
///
/// *Reconstructed:* the paper keeps running statistics of per-sample loss but does not publish
/// the decay; the default `beta = 0.9` is our choice.
#[derive(Debug, Clone)]
pub struct EmaBuffer {
    beta: f32,
    records: Vec<SampleStats>,
}

impl EmaBuffer {
    /// The default decay.
    pub const DEFAULT_DECAY: f64 = 0.9;

    /// A buffer for `n` samples with decay `beta` in `[0, 1)`.
    pub fn new(n: usize, beta: f64) -> Result<Self> {
        if n == 0 {
            return Err(PruneError::EmptyDataset);
        }
        check_half_open("decay", beta)?;
        Ok(Self { beta: beta as f32, records: vec![SampleStats::default(); n] })
    }

    /// The decay `beta`.
    pub fn decay(&self) -> f64 {
        f64::from(self.beta)
    }
}

impl ScoreBuffer for EmaBuffer {
    fn observe(&mut self, epoch: usize, indices: &[usize], values: &[f32]) -> Result<()> {
        validate(self.records.len(), indices, values)?;
        let e = epoch_u32(epoch);
        let beta = self.beta;
        let alpha = 1.0 - beta;
        for (k, (&i, &x)) in indices.iter().zip(values).enumerate() {
            prefetch(&self.records, indices.get(k + PREFETCH_DISTANCE));
            let r = &mut self.records[i];
            if r.count == 0 {
                r.mean = x;
                r.variance = 0.0;
            } else {
                let d = x - r.mean;
                r.mean += alpha * d;
                r.variance = beta * (r.variance + alpha * d * d);
            }
            r.last = x;
            r.count = r.count.saturating_add(1);
            r.last_epoch = e;
        }
        Ok(())
    }

    fn observe_predictions(
        &mut self,
        epoch: usize,
        indices: &[usize],
        values: &[f32],
        correct: &[bool],
        confidence: &[f32],
    ) -> Result<()> {
        observe_with_predictions(self, epoch, indices, values, correct, confidence)
    }

    fn records(&self) -> &[SampleStats] {
        &self.records
    }

    fn restore(&mut self, records: Vec<SampleStats>) -> Result<()> {
        restore_into(&mut self.records, records)
    }
}

/// Keeps only the last value: `mean == last`, `variance == 0`. What InfoBatch uses.
#[derive(Debug, Clone)]
pub struct LastValueBuffer {
    records: Vec<SampleStats>,
}

impl LastValueBuffer {
    /// A buffer for `n` samples.
    pub fn new(n: usize) -> Result<Self> {
        if n == 0 {
            return Err(PruneError::EmptyDataset);
        }
        Ok(Self { records: vec![SampleStats::default(); n] })
    }
}

impl ScoreBuffer for LastValueBuffer {
    fn observe(&mut self, epoch: usize, indices: &[usize], values: &[f32]) -> Result<()> {
        validate(self.records.len(), indices, values)?;
        let e = epoch_u32(epoch);
        for (k, (&i, &x)) in indices.iter().zip(values).enumerate() {
            prefetch(&self.records, indices.get(k + PREFETCH_DISTANCE));
            let r = &mut self.records[i];
            r.last = x;
            r.mean = x;
            r.count = r.count.saturating_add(1);
            r.last_epoch = e;
        }
        Ok(())
    }

    fn observe_predictions(
        &mut self,
        epoch: usize,
        indices: &[usize],
        values: &[f32],
        correct: &[bool],
        confidence: &[f32],
    ) -> Result<()> {
        observe_with_predictions(self, epoch, indices, values, correct, confidence)
    }

    fn records(&self) -> &[SampleStats] {
        &self.records
    }

    fn restore(&mut self, records: Vec<SampleStats>) -> Result<()> {
        restore_into(&mut self.records, records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_is_not_zero() {
        let mut b = EmaBuffer::new(3, 0.9).unwrap();
        b.observe(0, &[1], &[0.0]).unwrap();
        assert_eq!(b.get(0), None);
        let s = b.get(1).unwrap();
        assert_eq!((s.mean, s.count), (0.0, 1));
        assert_eq!(b.seen(), 1);
    }

    #[test]
    fn ema_matches_hand_computation() {
        let mut b = EmaBuffer::new(1, 0.5).unwrap();
        for (e, x) in [1.0f32, 3.0, 3.0].iter().enumerate() {
            b.observe(e, &[0], &[*x]).unwrap();
        }
        // x=1: mean 1, var 0. x=3: d=2, mean=2, var=0.5*(0+0.5*4)=1. x=3: d=1, mean=2.5, var=0.5*(1+0.5)=0.75
        let s = b.get(0).unwrap();
        assert_eq!((s.mean, s.variance, s.last, s.count, s.last_epoch), (2.5, 0.75, 3.0, 3, 2));
    }

    #[test]
    fn last_value_buffer_tracks_last() {
        let mut b = LastValueBuffer::new(2).unwrap();
        b.observe(4, &[0, 0], &[1.0, 5.0]).unwrap();
        let s = b.get(0).unwrap();
        assert_eq!((s.mean, s.last, s.variance, s.count, s.last_epoch), (5.0, 5.0, 0.0, 2, 4));
    }

    #[test]
    fn bad_observations_are_rejected_atomically() {
        let mut b = EmaBuffer::new(2, 0.9).unwrap();
        assert_eq!(b.observe(0, &[0, 2], &[1.0, 1.0]), Err(PruneError::IndexOutOfRange { index: 2, len: 2 }));
        assert_eq!(b.get(0), None, "a failed observe must not change the buffer");
        assert!(matches!(b.observe(0, &[0], &[f32::NAN]), Err(PruneError::NonFinite { .. })));
        assert!(matches!(b.observe(0, &[0], &[]), Err(PruneError::LengthMismatch { .. })));
        assert_eq!(EmaBuffer::new(0, 0.9).unwrap_err(), PruneError::EmptyDataset);
        assert!(matches!(EmaBuffer::new(3, 1.0), Err(PruneError::InvalidKnob { name: "decay", .. })));
    }

    #[test]
    fn restore_checks_length() {
        let mut a = EmaBuffer::new(2, 0.9).unwrap();
        a.observe(0, &[1], &[2.0]).unwrap();
        let mut b = EmaBuffer::new(2, 0.9).unwrap();
        b.restore(a.records().to_vec()).unwrap();
        assert_eq!(b.get(1), a.get(1));
        let mut c = EmaBuffer::new(3, 0.9).unwrap();
        assert!(matches!(c.restore(a.records().to_vec()), Err(PruneError::BadState(_))));
    }
}
