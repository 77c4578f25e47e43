//! Sharding a plan for data-parallel training (`EpochPlan::shard`): the shards are disjoint apart
//! from the padding, their own entries are exactly the plan, they have equal lengths, weights
//! follow their indices, and the same plan always shards the same way. And the reason the design
//! works: ranks that observe the same gathered stream (in rank order) keep pruner states
//! bit-identical to one process that observed the plan in its own order.

use std::collections::HashMap;

use dynaprune::*;
use proptest::prelude::*;

fn loss(i: usize, epoch: usize) -> f32 {
    ((i as u64).wrapping_mul(2654435761).wrapping_add(epoch as u64 * 97) % 1000) as f32 / 100.0 + 0.01
}

fn pruner(kind: u8, n: usize, seed: u64) -> Pruner {
    let policy: Box<dyn Policy> = match kind % 4 {
        0 => Box::new(Ucb::builder().prune_fraction(0.5).c(1.0).build().unwrap()),
        1 => Box::new(InfoBatch::from_drop_probability(0.5).unwrap()), // weighted plans of varying length
        2 => Box::new(EpsilonGreedy::builder().prune_fraction(0.3).epsilon(0.2).build().unwrap()),
        _ => Box::new(FullData),
    };
    Pruner::builder(n).boxed_policy(policy).schedule(Schedule::new(6).warmup(1)).seed(seed).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shards_partition_the_plan(kind in 0u8..4, n in 1usize..300, world in 1usize..9, seed in any::<u64>()) {
        let mut pr = pruner(kind, n, seed);
        for epoch in 0..3 {
            let plan = pr.plan(epoch).unwrap();
            let m = plan.len();
            let shards: Vec<PlanShard> = (0..world).map(|r| plan.shard(r, world).unwrap()).collect();
            let per_rank = m.div_ceil(world);
            let mut owned: Vec<usize> = Vec::new();
            let mut padding = 0;
            for (r, s) in shards.iter().enumerate() {
                prop_assert_eq!(s.len(), per_rank, "equal lengths");
                prop_assert_eq!((s.rank(), s.world()), (r, world));
                prop_assert_eq!(s.own_len() + s.padding_len(), s.len());
                prop_assert!(s.padding().iter().all(|i| !s.own_indices().contains(i)), "an index at most once per shard");
                prop_assert!((0..s.len()).all(|p| s.is_padding(p) == (p >= s.own_len())), "padding last");
                if m >= world {
                    prop_assert!(s.padding_len() <= 1);
                }
                owned.extend_from_slice(s.own_indices());
                padding += s.padding_len();
                // Weights follow their indices.
                let wmap: Option<HashMap<usize, f32>> =
                    plan.weights().map(|w| plan.indices().iter().copied().zip(w.iter().copied()).collect());
                match (s.weights(), &wmap) {
                    (None, None) => {}
                    (Some(w), Some(map)) => {
                        prop_assert_eq!(w.len(), s.len());
                        for (i, wi) in s.indices().iter().zip(w) {
                            prop_assert_eq!(map[i].to_bits(), wi.to_bits());
                        }
                    }
                    _ => prop_assert!(false, "weights present in the plan iff in the shard"),
                }
                // Deterministic.
                prop_assert_eq!(&plan.shard(r, world).unwrap(), s);
                let batched: Vec<usize> = s.batches(7).flat_map(|b| b.indices.iter().copied()).collect();
                prop_assert_eq!(&batched[..], s.indices());
            }
            // Disjoint apart from the padding, and their union is the plan.
            let mut sorted = owned.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), owned.len(), "owned entries are disjoint");
            let mut planned = plan.indices().to_vec();
            planned.sort_unstable();
            prop_assert_eq!(sorted, planned);
            prop_assert_eq!(padding, per_rank * world - m);
            // Rank-interleaved order: owned entry k of rank r is plan position r + k * world.
            for (r, s) in shards.iter().enumerate() {
                for (k, &i) in s.own_indices().iter().enumerate() {
                    prop_assert_eq!(i, plan.indices()[r + k * world]);
                }
            }
            for b in plan.batches(16) {
                let l: Vec<f32> = b.indices.iter().map(|&i| loss(i, epoch)).collect();
                pr.observe(b.indices, &l).unwrap();
            }
        }
    }

    /// `world` simulated ranks: each trains on its shard, observes the gathered stream (every
    /// rank's own entries, in rank order, padding dropped); their states stay identical to each
    /// other and to a single process that observed the plan in plan order.
    #[test]
    fn ranks_observing_the_gathered_stream_keep_one_state(kind in 0u8..4, n in 1usize..200, world in 1usize..5, seed in any::<u64>()) {
        let mut single = pruner(kind, n, seed);
        let mut ranks: Vec<Pruner> = (0..world).map(|_| pruner(kind, n, seed)).collect();
        for epoch in 0..6 {
            let plan = single.plan(epoch).unwrap();
            let mut gathered = Vec::new();
            for (r, p) in ranks.iter_mut().enumerate() {
                let rank_plan = p.plan(epoch).unwrap();
                prop_assert_eq!(rank_plan.indices(), plan.indices());
                gathered.extend_from_slice(rank_plan.shard(r, world).unwrap().own_indices());
            }
            let gl: Vec<f32> = gathered.iter().map(|&i| loss(i, epoch)).collect();
            for p in ranks.iter_mut() {
                p.observe(&gathered, &gl).unwrap();
            }
            let sl: Vec<f32> = plan.indices().iter().map(|&i| loss(i, epoch)).collect();
            single.observe(plan.indices(), &sl).unwrap();
            let want = single.state().to_bytes();
            for p in &ranks {
                prop_assert!(p.state().to_bytes() == want, "epoch {epoch}: a rank's state differs from one process's");
            }
        }
    }
}

#[test]
fn bad_shards_are_errors() {
    let mut pr = pruner(0, 10, 0);
    let plan = pr.plan(0).unwrap();
    assert!(matches!(plan.shard(0, 0), Err(PruneError::InvalidShard { rank: 0, world: 0, .. })));
    assert!(matches!(plan.shard(3, 3), Err(PruneError::InvalidShard { rank: 3, world: 3, .. })));
}
