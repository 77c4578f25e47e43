//! One root seed fixes the run; each component draws from its own derived stream.

/// Model weight initialisation.
pub const MODEL: &str = "model-init";
/// Augmentation draws.
pub const AUGMENT: &str = "augment";
/// Pruner selections and shuffles.
pub const PRUNER: &str = "pruner";
/// Selective-Backprop's per-batch keep draws.
pub const SELECTOR: &str = "selector";
/// Static scorer `k`'s models.
pub const SCORER: &str = "scorer";

/// The seed of component `purpose` under root `seed`.
pub fn derive(seed: u64, purpose: &str) -> u64 {
    dynaprune::rng::derive_seed(seed, purpose, 0)
}

/// The seed of the `k`-th instance of `purpose`.
pub fn derive_k(seed: u64, purpose: &str, k: u64) -> u64 {
    dynaprune::rng::derive_seed(seed, purpose, k)
}
