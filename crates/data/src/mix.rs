//! Stateless hashing for per-sample random draws: the pruning crate's hashes (the workspace has
//! one implementation of each, in `dynaprune::rng`).

pub(crate) use dynaprune::rng::mix3;
