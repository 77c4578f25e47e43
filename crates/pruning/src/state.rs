//! Saving and restoring a [`Pruner`](crate::Pruner)'s state in a small, versioned binary format.
//!
//! Layout (little-endian): magic `DPRS`, format version `u32`, then the fields of
//! [`PrunerState`] in order, then an FNV-1a 64-bit checksum of everything before it. Corrupt or
//! truncated input is an error, never a panic.
//!
//! Versions: 1 stored five fields per sample record (last, mean, variance, count, last epoch);
//! 2 adds the prediction to each record (confidence `f32`, correct `u8`) and the last
//! selection's learning-rate factor (KAKURENBO's). Version 1 files are still read (their records
//! get no prediction, their selection no factor); files of a newer version are rejected with
//! both numbers.

use crate::buffer::SampleStats;
use crate::error::{PruneError, Result};
use crate::rng::fnv1a as fnv;

const MAGIC: &[u8; 4] = b"DPRS";
const VERSION: u32 = 2;
/// The oldest version still read.
const OLDEST_VERSION: u32 = 1;

/// A pruner's resumable state. Produced by [`Pruner::state`](crate::Pruner::state).
#[derive(Debug, Clone, PartialEq)]
pub struct PrunerState {
    /// Number of samples.
    pub n: u64,
    /// Root seed.
    pub seed: u64,
    /// Policy name.
    pub policy: String,
    /// Last planned epoch.
    pub last_epoch: Option<u64>,
    /// Full-data epochs planned.
    pub full_epochs: u32,
    /// Pruned epochs planned.
    pub pruned_epochs: u32,
    /// Last selection: indices and optional weights.
    pub selection: Option<(Vec<u32>, Option<Vec<f32>>)>,
    /// Notes of the last selection.
    pub selection_notes: Vec<(String, f64)>,
    /// Learning-rate factor of the last selection (format version 2; `None` in version 1).
    pub selection_lr_factor: Option<f64>,
    /// Members of the previous plan.
    pub previous: Option<Vec<u32>>,
    /// Per-sample pruned-epoch selection counts.
    pub pruned_counts: Vec<u32>,
    /// Score buffer records.
    pub buffer: Vec<SampleStats>,
}

struct W(Vec<u8>);
impl W {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        for &x in v {
            self.u32(x);
        }
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for &x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn flag(&mut self, b: bool) {
        self.0.push(u8::from(b));
    }
}

struct R<'a> {
    b: &'a [u8],
    pos: usize,
}
impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            PruneError::BadState(format!("truncated: wanted {n} bytes at offset {} of {}", self.pos, self.b.len()))
        })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn len(&mut self, elem: usize) -> Result<usize> {
        let n = self.u64()?;
        let remaining = (self.b.len() - self.pos) as u64;
        if n.saturating_mul(elem as u64) > remaining {
            return Err(PruneError::BadState(format!("length {n} exceeds the remaining {remaining} bytes")));
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Result<String> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| PruneError::BadState("a string is not UTF-8".into()))
    }
    fn u32s(&mut self) -> Result<Vec<u32>> {
        let n = self.len(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
    fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.len(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
    fn flag(&mut self) -> Result<bool> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            x => Err(PruneError::BadState(format!("bad flag byte {x}"))),
        }
    }
}

impl PrunerState {
    /// Serialises the state.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_version(VERSION)
    }

    /// Serialises in format `version` (1 drops the predictions; tests use it to check that old
    /// files still read).
    fn to_bytes_version(&self, version: u32) -> Vec<u8> {
        let mut w = W(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.u32(version);
        w.u64(self.n);
        w.u64(self.seed);
        w.str(&self.policy);
        w.flag(self.last_epoch.is_some());
        w.u64(self.last_epoch.unwrap_or(0));
        w.u32(self.full_epochs);
        w.u32(self.pruned_epochs);
        w.flag(self.selection.is_some());
        if let Some((idx, weights)) = &self.selection {
            w.u32s(idx);
            w.flag(weights.is_some());
            if let Some(wt) = weights {
                w.f32s(wt);
            }
        }
        w.u64(self.selection_notes.len() as u64);
        for (k, v) in &self.selection_notes {
            w.str(k);
            w.f64(*v);
        }
        if version >= 2 {
            w.flag(self.selection_lr_factor.is_some());
            w.f64(self.selection_lr_factor.unwrap_or(1.0));
        }
        w.flag(self.previous.is_some());
        if let Some(p) = &self.previous {
            w.u32s(p);
        }
        w.u32s(&self.pruned_counts);
        w.u64(self.buffer.len() as u64);
        for r in &self.buffer {
            w.0.extend_from_slice(&r.last.to_le_bytes());
            w.0.extend_from_slice(&r.mean.to_le_bytes());
            w.0.extend_from_slice(&r.variance.to_le_bytes());
            w.u32(r.count);
            w.u32(r.last_epoch);
            if version >= 2 {
                w.0.extend_from_slice(&r.confidence.to_le_bytes());
                w.flag(r.correct);
            }
        }
        let sum = fnv(&w.0);
        w.u64(sum);
        w.0
    }

    /// Parses bytes written by [`PrunerState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 16 || &bytes[..4] != MAGIC {
            return Err(PruneError::BadState("not a dynaprune pruner state (bad magic)".into()));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
        if fnv(body) != stored {
            return Err(PruneError::BadState("checksum mismatch: the state file is corrupt or truncated".into()));
        }
        let mut r = R { b: body, pos: 4 };
        let version = r.u32()?;
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(PruneError::BadState(format!(
                "unsupported state version {version}: this build reads versions {OLDEST_VERSION} to {VERSION} \
                 (a newer dynaprune wrote it?)"
            )));
        }
        let n = r.u64()?;
        let seed = r.u64()?;
        let policy = r.str()?;
        let has_last = r.flag()?;
        let last = r.u64()?;
        let full_epochs = r.u32()?;
        let pruned_epochs = r.u32()?;
        let selection = if r.flag()? {
            let idx = r.u32s()?;
            let weights = if r.flag()? { Some(r.f32s()?) } else { None };
            Some((idx, weights))
        } else {
            None
        };
        let nn = r.len(16)?;
        let mut selection_notes = Vec::with_capacity(nn);
        for _ in 0..nn {
            let k = r.str()?;
            selection_notes.push((k, r.f64()?));
        }
        let selection_lr_factor = if version >= 2 {
            let has = r.flag()?;
            let f = r.f64()?;
            has.then_some(f)
        } else {
            None
        };
        let previous = if r.flag()? { Some(r.u32s()?) } else { None };
        let pruned_counts = r.u32s()?;
        let buffer = read_records(&mut r, version)?;
        if r.pos != body.len() {
            return Err(PruneError::BadState("trailing bytes after the state".into()));
        }
        Ok(Self {
            n,
            seed,
            policy,
            last_epoch: has_last.then_some(last),
            full_epochs,
            pruned_epochs,
            selection,
            selection_notes,
            selection_lr_factor,
            previous,
            pruned_counts,
            buffer,
        })
    }
}

/// The buffer's records, in the layout of format `version` (v1: five fields; v2: the
/// prediction too).
fn read_records(r: &mut R<'_>, version: u32) -> Result<Vec<SampleStats>> {
    let record_bytes = if version >= 2 { 25 } else { 20 };
    let nb = r.len(record_bytes)?;
    let mut buffer = Vec::with_capacity(nb);
    for _ in 0..nb {
        let f = |x: u32| f32::from_bits(x);
        let mut rec = SampleStats {
            last: f(r.u32()?),
            mean: f(r.u32()?),
            variance: f(r.u32()?),
            count: r.u32()?,
            last_epoch: r.u32()?,
            ..SampleStats::default()
        };
        if version >= 2 {
            rec.confidence = f(r.u32()?);
            rec.correct = r.flag()?;
        }
        buffer.push(rec);
    }
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_state() -> PrunerState {
        let rec = |k: u32| SampleStats {
            last: k as f32,
            mean: 0.5 * k as f32,
            variance: 0.25,
            count: k,
            last_epoch: k + 1,
            confidence: 0.75,
            correct: k % 2 == 0,
        };
        PrunerState {
            n: 3,
            seed: 9,
            policy: "kakurenbo".into(),
            last_epoch: Some(4),
            full_epochs: 1,
            pruned_epochs: 3,
            selection: Some((vec![0, 2], Some(vec![1.0, 2.0]))),
            selection_notes: vec![("max_hidden_fraction".into(), 0.2)],
            selection_lr_factor: Some(1.25),
            previous: Some(vec![1]),
            pruned_counts: vec![1, 2, 3],
            buffer: (1..=3).map(rec).collect(),
        }
    }

    #[test]
    fn version_2_round_trips_predictions() {
        let s = sample_state();
        let back = PrunerState::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.buffer[1].confidence, 0.75);
        assert!(back.buffer[1].correct);
    }

    #[test]
    fn version_1_files_still_read_without_predictions() {
        let s = sample_state();
        let v1 = s.to_bytes_version(1);
        assert_eq!(u32::from_le_bytes(v1[4..8].try_into().unwrap()), 1);
        let back = PrunerState::from_bytes(&v1).unwrap();
        let want: Vec<SampleStats> =
            s.buffer.iter().map(|r| SampleStats { confidence: 0.0, correct: false, ..*r }).collect();
        assert_eq!(back.buffer, want, "a v1 record keeps its five fields and gets no prediction");
        assert_eq!(back.selection_lr_factor, None);
        assert_eq!(back.pruned_counts, s.pruned_counts);
    }

    #[test]
    fn every_truncation_and_arbitrary_bytes_are_errors() {
        let bytes = sample_state().to_bytes();
        for len in 0..bytes.len() {
            assert!(PrunerState::from_bytes(&bytes[..len]).is_err(), "truncated to {len} bytes");
        }
        // Arbitrary bytes, including a valid magic with junk after it: errors, never panics.
        let mut z: u64 = 0x9E37_79B9_7F4A_7C15;
        for trial in 0..2000 {
            let len = trial % 300;
            let mut junk: Vec<u8> = (0..len)
                .map(|_| {
                    z ^= z << 13;
                    z ^= z >> 7;
                    z ^= z << 17;
                    z as u8
                })
                .collect();
            if trial % 2 == 0 && junk.len() >= 4 {
                junk[..4].copy_from_slice(MAGIC);
            }
            assert!(PrunerState::from_bytes(&junk).is_err(), "trial {trial}");
        }
        // A valid checksum over a corrupted body (the policy name's length, after magic, version,
        // n and seed, made huge) is still an error.
        let mut b = sample_state().to_bytes_version(2);
        let body = b.len() - 8;
        b[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        let sum = fnv(&b[..body]);
        b[body..].copy_from_slice(&sum.to_le_bytes());
        assert!(PrunerState::from_bytes(&b).is_err());
    }

    #[test]
    fn newer_version_is_rejected_with_both_numbers() {
        let mut b = sample_state().to_bytes_version(3);
        // Re-checksum so that only the version is wrong.
        let body = b.len() - 8;
        let sum = fnv(&b[..body]);
        b[body..].copy_from_slice(&sum.to_le_bytes());
        let e = PrunerState::from_bytes(&b).unwrap_err().to_string();
        assert!(e.contains("unsupported state version 3") && e.contains("versions 1 to 2"), "{e}");
    }
}
