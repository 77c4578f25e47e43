//! Workspace-level tests live in this package's test targets (`invariants.rs`); the library is
//! empty on purpose.
