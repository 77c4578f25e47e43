//! Python bindings for the `dynaprune` crate: the module `dynaprune._dynaprune`, re-exported by
//! the pure-Python package `dynaprune` (`python/dynaprune/__init__.py`).
//!
//! Map:
//! - [`errors`]: `PruneError` -> `ValueError` (bad input) / `RuntimeError`, same message.
//! - [`arrays`]: NumPy (or anything with `__array__`) in, checked: dtype, 1-D; contiguous
//!   float32 losses are read in place, without a copy, and a strided view is copied once.
//! - [`policies`]: one Python class per rule, all subclasses of `Policy`, plus `Staleness`.
//! - [`pruner`]: `Schedule`, `Pruner`, `Plan` and `Shard` (a plan cut for one rank).
//!
//! Invariant: no Rust panic is meant to reach Python. Every input is checked before it reaches
//! the crate, which itself returns errors instead of panicking; PyO3 would turn a panic that
//! slipped through into a Python exception (`PanicException`), never an abort.

mod arrays;
mod errors;
mod policies;
mod pruner;

use pyo3::prelude::*;

/// The native half of the `dynaprune` Python package.
#[pymodule]
fn _dynaprune(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    policies::register(m)?;
    pruner::register(m)?;
    Ok(())
}
