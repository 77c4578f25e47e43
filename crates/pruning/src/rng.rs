//! Seeded, independent random streams.
//!
//! One root seed fixes a whole run. Every consumer asks for its own stream by *purpose* (a short
//! label such as `"select"`) and an *index* (usually the epoch), so streams never interfere: adding
//! a random draw in one place does not shift the numbers another place sees, and a resumed run can
//! recreate any epoch's stream without saving generator state. No global state is involved.
//!
//! ```
//! use rand::Rng as _;
//! let mut a = dynaprune::rng::stream(42, "select", 3);
//! let mut b = dynaprune::rng::stream(42, "select", 3);
//! assert_eq!(a.random::<u64>(), b.random::<u64>());
//! assert_ne!(dynaprune::rng::derive_seed(42, "select", 3), dynaprune::rng::derive_seed(42, "shuffle", 3));
//! ```

use rand::SeedableRng;

/// The random helpers for policy authors, the ones the built-in rules use: uniform integers
/// ([`below`]), `k` of a pool ([`sample`]), a random subset ([`random_subset`]) and an exact
/// shuffle carrying weights along ([`shuffle_together`]). The deterministic ones (the top `k` by
/// score, the kept count of a prune fraction) are in [`crate::select`]. With them and [`stream`],
/// a policy outside this crate needs no `rand` dependency.
///
/// ```
/// use dynaprune::rng::{self, sample};
/// let mut r = rng::stream(7, "my-policy", 0);
/// assert_eq!(sample((0..100).collect(), 10, &mut r).len(), 10);
/// ```
pub use crate::select::{below, random_subset, sample, shuffle_together};

/// The top `k` by score: moved to [`crate::select::top_k`] (it draws nothing at random).
#[deprecated(note = "moved to `dynaprune::select::top_k` (it draws nothing at random)")]
pub fn top_k(candidates: &[usize], k: usize, score: impl Fn(usize) -> f32) -> Vec<usize> {
    crate::select::top_k(candidates, k, score)
}

/// The kept count of a prune fraction: moved to [`crate::select::keep_count`].
#[deprecated(note = "moved to `dynaprune::select::keep_count` (it draws nothing at random)")]
pub fn keep_count(n: usize, prune_fraction: f64) -> crate::Result<usize> {
    crate::select::keep_count(n, prune_fraction)
}

/// The generator used throughout: ChaCha8, portable and stable across platforms.
pub type Rng = rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a bijective 64-bit mixer with good avalanche.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bits: stable across platforms and releases. Hashes labels into streams here,
/// parameter names into initialisation streams (`dynaprune-model`), and checksums saved state.
#[inline]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A well-mixed hash of three words (per-sample draws: `(seed, epoch, index)`).
#[inline]
pub fn mix3(a: u64, b: u64, c: u64) -> u64 {
    mix64(mix64(mix64(a) ^ b) ^ c)
}

/// Derives the seed of the stream `(root, purpose, index)`.
pub fn derive_seed(root: u64, purpose: &str, index: u64) -> u64 {
    mix3(root, fnv1a(purpose.as_bytes()), index)
}

/// A generator for the stream `(root, purpose, index)`.
pub fn stream(root: u64, purpose: &str, index: u64) -> Rng {
    Rng::seed_from_u64(derive_seed(root, purpose, index))
}
