//! RS2 without replacement (Okanovic et al., 2023, "Repeated Random Sampling for Minimizing the
//! Time-to-Accuracy of Learning").

use super::{Policy, SelectContext, Selection};
use crate::buffer::ScoreBuffer;
use crate::error::{check_half_open, Result};
use crate::rng::{stream, Rng};
use crate::select::{keep_count, shuffle_together, BitSet};

/// RS2 without replacement: the run walks through a sequence of random permutations of the
/// dataset, and each selection takes the next `k = round((1 - prune_fraction) * n)` samples of it.
/// Every sample is trained on once per pass, before any sample repeats.
///
/// Where a selection straddles two passes it takes the tail of one and the head of the next; the
/// next pass's permutation then puts the samples of that tail last (keeping their order), so no
/// selection holds a sample twice and every pass is still a permutation of the dataset. (The
/// reference code simply reshuffles; the exact boundary rule is ours.)
///
/// The permutations come from the pruner's root seed ([`SelectContext::seed`]), pass `p` from the
/// stream `(seed, "rs2", p)`, so a selection depends only on the seed and its index and a resumed
/// run plans exactly what the uninterrupted one would. Planning selection `j` re-derives the
/// passes up to `j * k / n`: `O(j * k)` work, a few shuffles of the dataset per plan.
#[derive(Debug, Clone)]
pub struct Rs2 {
    prune_fraction: f64,
}

impl Rs2 {
    /// Removes `prune_fraction` (in `[0, 1)`) of the samples at each selection.
    pub fn new(prune_fraction: f64) -> Result<Self> {
        check_half_open("prune_fraction", prune_fraction)?;
        Ok(Self { prune_fraction })
    }

    /// The samples of selection `j` (0-based) over `n` samples with root seed `seed`, in sequence
    /// order.
    pub fn selection_of(&self, seed: u64, n: usize, j: usize) -> Result<Vec<usize>> {
        let k = keep_count(n, self.prune_fraction)?;
        let start = j * k;
        let (pass, offset) = (start / n, start % n);
        let mut order = pass_order(seed, n, k, pass);
        let head_end = (offset + k).min(n);
        let mut out: Vec<usize> = order[offset..head_end].to_vec();
        if offset + k > n {
            order = next_pass(seed, n, k, pass + 1, &order);
            out.extend_from_slice(&order[..offset + k - n]);
        }
        Ok(out)
    }
}

/// The random permutation behind pass `p`.
fn permutation(seed: u64, n: usize, p: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    shuffle_together(&mut v, None, &mut stream(seed, "rs2", p as u64)).expect("no weights, nothing to mismatch");
    v
}

/// Pass `p`'s order given pass `p - 1`'s: its permutation with the samples that the straddling
/// selection already took from the end of pass `p - 1` moved last.
fn next_pass(seed: u64, n: usize, k: usize, p: usize, previous: &[usize]) -> Vec<usize> {
    let next = permutation(seed, n, p);
    let tail = (p * n) % k;
    if tail == 0 {
        return next;
    }
    let taken = BitSet::from_indices(n, &previous[n - tail..]);
    let (mut fresh, mut late): (Vec<usize>, Vec<usize>) = next.into_iter().partition(|&i| !taken.contains(i));
    fresh.append(&mut late);
    fresh
}

/// The order of pass `pass`, derived pass by pass from pass 0.
fn pass_order(seed: u64, n: usize, k: usize, pass: usize) -> Vec<usize> {
    let mut order = permutation(seed, n, 0);
    for p in 1..=pass {
        order = next_pass(seed, n, k, p, &order);
    }
    order
}

impl Policy for Rs2 {
    fn name(&self) -> &'static str {
        crate::catalog::RS2.name
    }
    fn prune_fraction(&self) -> f64 {
        self.prune_fraction
    }
    fn uses_scores(&self) -> bool {
        false
    }
    fn select(&self, ctx: &SelectContext, buffer: &dyn ScoreBuffer, _: &mut Rng) -> Result<Selection> {
        let n = buffer.len();
        let k = keep_count(n, self.prune_fraction)?;
        let indices = self.selection_of(ctx.seed, n, ctx.selection)?;
        let pass = (ctx.selection * k) / n;
        Ok(Selection { indices, notes: vec![("pass".into(), pass as f64)], ..Selection::default() })
    }
}
