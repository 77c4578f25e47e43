//! Project automation behind `cargo xtask`: dataset fetching ([`fetch`]), the comparison grid
//! ([`reproduce`]), RESULTS.md generated from the committed reports ([`results`]), the
//! training-speed benchmarks ([`bench`](mod@bench), [`bench_epoch`]) and the CUDA build ([`cuda`]).

pub mod bench;
pub mod bench_epoch;
pub mod cuda;
pub mod fetch;
pub mod reproduce;
pub mod results;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of `xtask/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Builds the `dynaprune` binary (release) and returns its path; `$DYNAPRUNE_BIN` overrides
/// (a prebuilt binary, e.g. the CUDA build or the one a test run already built).
pub fn build_binary(repo: &Path) -> Result<PathBuf> {
    if let Some(b) = std::env::var_os("DYNAPRUNE_BIN") {
        return Ok(PathBuf::from(b));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "dynaprune-harness", "--bin", "dynaprune"])
        .current_dir(repo)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the dynaprune binary failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo.join("target"));
    Ok(target.join("release/dynaprune"))
}
