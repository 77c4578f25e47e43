//! Data-parallel training: one epoch's plan cut into `world` shards of equal length, one per rank.
//!
//! Every rank builds the same [`crate::Pruner`] from the same seed and feeds it the same global
//! stream of observations (the caller gathers them across ranks; this crate never communicates),
//! so every rank computes the same [`EpochPlan`] without any plan being sent. Each rank then
//! trains on its own [`PlanShard`], cut exactly as PyTorch's `DistributedSampler` cuts a dataset
//! (with `shuffle=False, drop_last=False`):
//!
//! - the plan's `m` samples, in order, are padded to `world * ceil(m / world)` positions by
//!   repeating the plan from its start (position `p` holds `plan[p % m]`);
//! - rank `r` takes positions `r, r + world, r + 2 * world, ...`.
//!
//! **Padding, not dropping.** Every planned sample is trained on, so the budget the plan states
//! holds; the price is at most `world - 1` extra sample passes per epoch (none when `world`
//! divides `m`). A padded entry always sits at the end of its shard
//! ([`PlanShard::own_len`] counts the entries before it), it is a copy of a sample that another
//! rank owns, and it must be neither counted in the budget nor observed: the rank that owns the
//! sample observes it. Within one shard an index occurs at most once (padded or owned), so "drop
//! this rank's padded indices" is an exact filter. Weights follow their indices: a padded copy
//! carries its sample's weight, as it would under `DistributedSampler`.

use crate::error::{PruneError, Result};
use crate::plan::{EpochPlan, PlanBatch};

/// One rank's part of an [`EpochPlan`] ([`EpochPlan::shard`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanShard {
    rank: usize,
    world: usize,
    indices: Vec<usize>,
    weights: Option<Vec<f32>>,
    own: usize,
}

/// Where rank `rank`'s shard of a plan of `len` samples reads from: the plan positions, in shard
/// order, and how many of them are the rank's own (the rest are padding). Checks the arguments.
pub fn shard_positions(len: usize, rank: usize, world: usize) -> Result<(Vec<usize>, usize)> {
    if world == 0 {
        return Err(PruneError::InvalidShard { rank, world, why: "the world size must be at least 1" });
    }
    if rank >= world {
        return Err(PruneError::InvalidShard { rank, world, why: "the rank must be below the world size" });
    }
    if len == 0 {
        return Ok((Vec::new(), 0));
    }
    let per_rank = len.div_ceil(world);
    let positions: Vec<usize> = (0..per_rank).map(|k| rank + k * world).collect();
    let own = positions.iter().take_while(|&&p| p < len).count();
    Ok((positions.into_iter().map(|p| p % len).collect(), own))
}

impl EpochPlan {
    /// Rank `rank`'s shard of this plan in a data-parallel run of `world` processes (see the
    /// [module docs](crate::shard): padded like `DistributedSampler`, padding last). Every shard
    /// has `ceil(len / world)` entries; together their own entries are exactly the plan.
    ///
    /// # Errors
    /// [`PruneError::InvalidShard`] if `world` is 0 or `rank >= world`.
    pub fn shard(&self, rank: usize, world: usize) -> Result<PlanShard> {
        let (positions, own) = shard_positions(self.indices.len(), rank, world)?;
        let indices = positions.iter().map(|&p| self.indices[p]).collect();
        let weights = self.weights.as_ref().map(|w| positions.iter().map(|&p| w[p]).collect());
        Ok(PlanShard { rank, world, indices, weights, own })
    }
}

impl PlanShard {
    /// This shard's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks the plan was cut for.
    pub fn world(&self) -> usize {
        self.world
    }

    /// The indices this rank trains on, in order: its own first, then any padding.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Loss weights aligned with [`PlanShard::indices`] (`None` means all 1).
    pub fn weights(&self) -> Option<&[f32]> {
        self.weights.as_deref()
    }

    /// Entries in the shard, padding included: the same on every rank.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// `true` for the shards of an empty plan.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The entries this rank owns: these count in the budget and are this rank's to observe.
    pub fn own_len(&self) -> usize {
        self.own
    }

    /// Padded entries at the end (copies of samples other ranks own): 0 or 1 when the plan has
    /// at least `world` samples.
    pub fn padding_len(&self) -> usize {
        self.indices.len() - self.own
    }

    /// The indices this rank owns (the shard without its padding).
    pub fn own_indices(&self) -> &[usize] {
        &self.indices[..self.own]
    }

    /// The padded indices: train on them if the step needs equal batches on every rank, but do
    /// not observe them.
    pub fn padding(&self) -> &[usize] {
        &self.indices[self.own..]
    }

    /// `true` if shard position `position` is padding.
    pub fn is_padding(&self, position: usize) -> bool {
        position >= self.own
    }

    /// Consecutive batches of at most `batch_size` entries, padding included (the last batch
    /// may be smaller).
    ///
    /// # Panics
    /// If `batch_size` is 0, like [`slice::chunks`].
    pub fn batches(&self, batch_size: usize) -> impl ExactSizeIterator<Item = PlanBatch<'_>> + '_ {
        crate::plan::batches(&self.indices, self.weights.as_deref(), batch_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_distributed_sampler_by_hand() {
        // DistributedSampler(range(5), num_replicas=2, shuffle=False): padded [0 1 2 3 4 0],
        // rank 0 takes [0 2 4], rank 1 [1 3 0] (the last is padding).
        assert_eq!(shard_positions(5, 0, 2).unwrap(), (vec![0, 2, 4], 3));
        assert_eq!(shard_positions(5, 1, 2).unwrap(), (vec![1, 3, 0], 2));
        // Fewer samples than ranks: [0 1 0 1] over 4 ranks.
        assert_eq!(shard_positions(2, 3, 4).unwrap(), (vec![1], 0));
        assert_eq!(shard_positions(0, 0, 3).unwrap(), (vec![], 0));
    }

    #[test]
    fn bad_rank_or_world_is_an_error() {
        assert!(matches!(shard_positions(5, 0, 0), Err(PruneError::InvalidShard { world: 0, .. })));
        let e = shard_positions(5, 2, 2).unwrap_err();
        assert_eq!(e.to_string(), "invalid shard: rank 2 of world size 2: the rank must be below the world size");
    }
}
