//! Selection helpers for policy authors, the ones the built-in rules use, so that a policy
//! written outside this crate needs no `rand` of its own: the kept count of a prune fraction
//! ([`keep_count`]), the top `k` by score with ties broken by index ([`top_k`]), and the random
//! ones (re-exported in [`crate::rng`] beside the seed streams): [`below`], [`sample`],
//! [`random_subset`], [`shuffle_together`].
//!
//! ```
//! use dynaprune::select::{keep_count, top_k};
//! let best = top_k(&[0, 1, 2, 3], 2, |i| [0.1, 0.9, 0.5, 0.9][i] as f32);
//! assert_eq!({ let mut b = best; b.sort(); b }, vec![1, 3]);
//! assert_eq!(keep_count(10, 0.3)?, 7);
//! # Ok::<(), dynaprune::PruneError>(())
//! ```
//!
//! Scores are turned into `u64` keys, `(order-preserving bits of the f32 score) << 32 | index`, so
//! a top-k is one `select_nth_unstable` over integers (introselect, O(n) expected) with ties broken
//! deterministically by index, and no comparison closure on floats.

use crate::error::{PruneError, Result};
use crate::rng::Rng;
use rand::Rng as _;

/// Maps an `f32` to a `u32` whose unsigned order is the float's total order (-inf < ... < +inf).
/// NaN must be filtered out before.
#[inline]
pub(crate) fn ordered_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Number of samples a hard policy keeps: `round((1 - prune_fraction) * n)`. Errors if that is 0.
pub fn keep_count(n: usize, prune_fraction: f64) -> Result<usize> {
    crate::error::check_half_open("prune_fraction", prune_fraction)?;
    if n == 0 {
        return Err(PruneError::EmptyDataset);
    }
    let k = ((1.0 - prune_fraction) * n as f64).round() as usize;
    if k == 0 {
        return Err(PruneError::InvalidKnob {
            name: "prune_fraction",
            value: prune_fraction,
            expected: "a value small enough that round((1 - prune_fraction) * n) >= 1",
        });
    }
    Ok(k.min(n))
}

/// The ranking key of sample `i` with score `score`: smaller keys rank first (higher score first,
/// then lower index).
#[inline]
pub(crate) fn rank_key(score: f32, i: usize) -> u64 {
    !((u64::from(ordered_bits(score)) << 32) | u64::from(!(i as u32)))
}

/// The sample indices of the `k` best keys (see [`rank_key`]), in no particular order.
pub(crate) fn best_k(mut keys: Vec<u64>, k: usize) -> Vec<usize> {
    let k = k.min(keys.len());
    if k == 0 {
        return Vec::new();
    }
    if k < keys.len() {
        keys.select_nth_unstable(k - 1);
        keys.truncate(k);
    }
    keys.into_iter().map(|key| !(!key as u32) as usize).collect()
}

/// The `k` candidates with the highest `score(i)` (ties: lower index first), in no particular
/// order.
pub fn top_k(candidates: &[usize], k: usize, score: impl Fn(usize) -> f32) -> Vec<usize> {
    best_k(candidates.iter().map(|&i| rank_key(score(i), i)).collect(), k)
}

/// A uniform integer in `0..bound` (`bound >= 1`), by Lemire's nearly divisionless method:
/// exact (rejection removes the bias) and about one multiply per draw.
#[inline]
pub fn below(rng: &mut Rng, bound: u32) -> u32 {
    use rand::RngCore as _;
    let mut m = u64::from(rng.next_u32()) * u64::from(bound);
    if (m as u32) < bound {
        let threshold = bound.wrapping_neg() % bound;
        while (m as u32) < threshold {
            m = u64::from(rng.next_u32()) * u64::from(bound);
        }
    }
    (m >> 32) as u32
}

/// A uniformly random subset of `0..n` that removes `prune_fraction` of it (static and dynamic
/// random pruning differ only in how often they call this).
pub fn random_subset(n: usize, prune_fraction: f64, rng: &mut Rng) -> Result<Vec<usize>> {
    let k = keep_count(n, prune_fraction)?;
    Ok(sample((0..n).collect(), k, rng))
}

/// Draws `k` distinct elements of `pool` uniformly at random.
///
/// For small `k` this is a partial Fisher-Yates (O(k) draws, result in random order); for large
/// `k` it is selection sampling (Knuth's Algorithm S: one sequential pass, result in pool order),
/// which avoids the cache misses of random swaps over a large pool.
pub fn sample(mut pool: Vec<usize>, k: usize, rng: &mut Rng) -> Vec<usize> {
    let m = pool.len();
    let k = k.min(m);
    if k.saturating_mul(8) < m || m < SEQUENTIAL_MIN {
        for i in 0..k {
            let j = i + below(rng, (m - i) as u32) as usize;
            pool.swap(i, j);
        }
        pool.truncate(k);
        return pool;
    }
    let mut kept = 0usize;
    for read in 0..m {
        if kept == k {
            break;
        }
        // Keep this element with probability (still needed) / (still available).
        if (below(rng, (m - read) as u32) as usize) < k - kept {
            pool[kept] = pool[read];
            kept += 1;
        }
    }
    pool.truncate(kept);
    pool
}

/// Below this pool size the random swaps of Fisher-Yates stay in cache.
const SEQUENTIAL_MIN: usize = 1 << 15;

/// Target elements per bucket in the bucketed shuffle (a bucket's indices and weights fit in L2).
const SHUFFLE_BUCKET: usize = 1 << 14;

/// Shuffles `a` uniformly, applying the same permutation to `b` if given.
///
/// Small inputs use Fisher-Yates. Large ones use the Rao-Sandelius method, which is also exact:
/// each element goes to a uniformly random bucket (a power-of-two count, so one 64-bit draw
/// yields several bucket ids without bias; writes are sequential per bucket), then each bucket,
/// small enough for the cache, is Fisher-Yates shuffled, and the buckets are concatenated. A
/// plain Fisher-Yates over millions of elements spends most of its time in cache misses.
///
/// `b`, when given, must be as long as `a`: otherwise [`PruneError::LengthMismatch`], with
/// neither shuffled.
pub fn shuffle_together(a: &mut Vec<usize>, b: Option<&mut Vec<f32>>, rng: &mut Rng) -> Result<()> {
    let n = a.len();
    if let Some(b) = &b {
        if b.len() != n {
            return Err(PruneError::LengthMismatch { indices: n, values: b.len() });
        }
    }
    if n <= 2 * SHUFFLE_BUCKET {
        fisher_yates(a, b.map(|b| b.as_mut_slice()), rng);
        return Ok(());
    }
    let bits = (n / SHUFFLE_BUCKET).next_power_of_two().trailing_zeros().max(1);
    let buckets = 1usize << bits;
    let mask = (buckets - 1) as u64;
    let per_draw = (64 / bits) as usize;
    let mut ids: Vec<u16> = Vec::with_capacity(n + per_draw);
    while ids.len() < n {
        let mut r: u64 = rng.random();
        for _ in 0..per_draw {
            ids.push((r & mask) as u16);
            r >>= bits;
        }
    }
    ids.truncate(n);
    let mut start = vec![0usize; buckets + 1];
    for &id in &ids {
        start[id as usize + 1] += 1;
    }
    for i in 0..buckets {
        start[i + 1] += start[i];
    }
    let mut pos = start.clone();
    let mut out_a = vec![0usize; n];
    for (&x, &id) in a.iter().zip(&ids) {
        let p = &mut pos[id as usize];
        out_a[*p] = x;
        *p += 1;
    }
    let mut out_b = b.as_ref().map(|b| {
        let mut out = vec![0f32; n];
        pos.copy_from_slice(&start);
        for (&x, &id) in b.iter().zip(&ids) {
            let p = &mut pos[id as usize];
            out[*p] = x;
            *p += 1;
        }
        out
    });
    for w in start.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        fisher_yates(&mut out_a[lo..hi], out_b.as_mut().map(|ob| &mut ob[lo..hi]), rng);
    }
    *a = out_a;
    if let (Some(b), Some(ob)) = (b, out_b) {
        *b = ob;
    }
    Ok(())
}

fn fisher_yates(a: &mut [usize], mut b: Option<&mut [f32]>, rng: &mut Rng) {
    for i in (1..a.len()).rev() {
        let j = below(rng, i as u32 + 1) as usize;
        a.swap(i, j);
        if let Some(b) = b.as_deref_mut() {
            b.swap(i, j);
        }
    }
}

/// A dense membership bitset over `0..n`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    pub(crate) fn new(n: usize) -> Self {
        Self { words: vec![0; n.div_ceil(64)] }
    }
    pub(crate) fn from_indices(n: usize, indices: &[usize]) -> Self {
        let mut s = Self::new(n);
        for &i in indices {
            s.insert(i);
        }
        s
    }
    #[inline]
    pub(crate) fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    #[inline]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chi-square statistic of where elements 0 and n-1 land (8 position bins each).
    fn chi2_positions(n: usize, trials: u64, shuffle: impl Fn(&mut Vec<usize>, &mut Rng)) -> f64 {
        let bins = 8;
        let mut counts = vec![0f64; bins * 2];
        for t in 0..trials {
            let mut v: Vec<usize> = (0..n).collect();
            shuffle(&mut v, &mut crate::rng::stream(1, "chi2", t));
            for (p, &x) in v.iter().enumerate() {
                if x == 0 {
                    counts[p * bins / n] += 1.0;
                }
                if x == n - 1 {
                    counts[bins + p * bins / n] += 1.0;
                }
            }
        }
        let e = trials as f64 / bins as f64;
        counts.iter().map(|c| (c - e) * (c - e) / e).sum()
    }

    #[test]
    fn shuffle_together_refuses_weights_of_another_length_and_shuffles_nothing() {
        for n in [5, 2 * SHUFFLE_BUCKET + 3] {
            let mut v: Vec<usize> = (0..n).collect();
            let mut w = vec![1.0f32; n - 1];
            let e = shuffle_together(&mut v, Some(&mut w), &mut crate::rng::stream(0, "t", 0)).unwrap_err();
            assert_eq!(e, PruneError::LengthMismatch { indices: n, values: n - 1 });
            assert_eq!(v, (0..n).collect::<Vec<_>>(), "nothing shuffled");
        }
    }

    #[test]
    fn bucketed_shuffle_is_a_uniform_permutation() {
        let n = 2 * SHUFFLE_BUCKET + 1000;
        let mut v: Vec<usize> = (0..n).collect();
        let mut w: Vec<f32> = (0..n).map(|i| i as f32).collect();
        shuffle_together(&mut v, Some(&mut w), &mut crate::rng::stream(0, "t", 0)).unwrap();
        assert!(v.iter().zip(&w).all(|(&i, &x)| i as f32 == x), "weights follow their indices");
        let mut s = v.clone();
        s.sort_unstable();
        assert_eq!(s, (0..n).collect::<Vec<_>>());
        // Chi-square with 14 degrees of freedom: the 99.9th percentile is 36.1.
        let chi2 = chi2_positions(n, 200, |v, r| shuffle_together(v, None, r).unwrap());
        assert!(chi2 < 36.1, "chi2 = {chi2}");
    }

    #[test]
    fn both_sampling_methods_are_uniform() {
        for (m, k) in [(100usize, 5usize), (SEQUENTIAL_MIN + 10, SEQUENTIAL_MIN / 2)] {
            let trials = 300;
            let (mut first, mut last) = (0usize, 0usize);
            for t in 0..trials {
                let s = sample((0..m).collect(), k, &mut crate::rng::stream(2, "s", t));
                let mut d = s.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), k);
                first += usize::from(s.contains(&0));
                last += usize::from(s.contains(&(m - 1)));
            }
            let p = k as f64 / m as f64;
            let sd = (trials as f64 * p * (1.0 - p)).sqrt();
            for h in [first, last] {
                assert!((h as f64 - trials as f64 * p).abs() < 5.0 * sd + 1.0, "m={m} k={k}: {h}");
            }
        }
    }

    #[test]
    fn ordered_bits_is_monotone() {
        let xs = [f32::NEG_INFINITY, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, f32::INFINITY];
        for w in xs.windows(2) {
            assert!(ordered_bits(w[0]) < ordered_bits(w[1]), "{:?}", w);
        }
    }

    #[test]
    fn top_k_picks_highest_with_index_ties() {
        let s = [0.5f32, 2.0, 2.0, -1.0, 7.0];
        let cand: Vec<usize> = (0..5).collect();
        let mut t = top_k(&cand, 3, |i| s[i]);
        t.sort();
        assert_eq!(t, vec![1, 2, 4]);
        let mut t = top_k(&cand, 2, |i| s[i]);
        t.sort();
        assert_eq!(t, vec![1, 4], "tie between 1 and 2 goes to the lower index");
    }

    #[test]
    fn keep_count_rounds_and_rejects_zero() {
        assert_eq!(keep_count(10, 0.25).unwrap(), 8); // 7.5 rounds away from zero
        assert_eq!(keep_count(10, 0.0).unwrap(), 10);
        assert!(keep_count(1, 0.9).is_err());
        assert!(keep_count(10, 1.0).is_err());
        assert!(keep_count(10, -0.1).is_err());
        assert_eq!(keep_count(0, 0.5), Err(PruneError::EmptyDataset));
    }
}
