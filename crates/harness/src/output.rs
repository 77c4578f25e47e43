//! Writing result files atomically (temporary file, then rename), so an interrupted run never
//! leaves a half-written file where a complete one is expected.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Writes `bytes` to `path` atomically ([`dynaprune_io::write_atomic`]: a temporary name of
/// its own per process and call, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(dynaprune_io::write_atomic(path, bytes)?)
}

/// Pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// CSV rows (with header from the first record's field names), atomically.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    write_atomic(path, &w.into_inner().context("serialising CSV")?)
}
