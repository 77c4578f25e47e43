//! `cargo xtask cuda-env` / `cuda-check`: compiling the `cuda` feature on a machine without a
//! GPU or a system CUDA toolkit, with `scripts/cuda-env.sh` (nvcc and the CUDA 13.2 libraries
//! from PyPI, pinned; `CUDA_COMPUTE_CAP=90` for Hopper, since there is no GPU to query).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The default environment directory.
pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp")).join(".cache/dynaprune-cuda13")
}

/// Runs `scripts/cuda-env.sh DIR`.
pub fn env(repo: &Path, dir: &Path) -> Result<()> {
    let status = Command::new("bash")
        .arg(repo.join("scripts/cuda-env.sh"))
        .arg(dir)
        .status()
        .context("running scripts/cuda-env.sh")?;
    if !status.success() {
        bail!("scripts/cuda-env.sh failed");
    }
    Ok(())
}

/// Prepares the environment if needed and builds the `dynaprune` binary with `--features cuda`
/// (into `target/cuda` so the CPU build is untouched).
pub fn check(repo: &Path, dir: &Path) -> Result<()> {
    if !dir.join("env.sh").exists() {
        env(repo, dir)?;
    }
    let script = format!(
        "source '{}' && cargo build --release -p dynaprune-harness --features cuda --target-dir '{}'",
        dir.join("env.sh").display(),
        repo.join("target/cuda").display()
    );
    let t = std::time::Instant::now();
    let status = Command::new("bash").arg("-c").arg(&script).current_dir(repo).status()?;
    if !status.success() {
        bail!("the CUDA build failed");
    }
    eprintln!(
        "CUDA build ok in {:.0}s: {}",
        t.elapsed().as_secs_f64(),
        repo.join("target/cuda/release/dynaprune").display()
    );
    Ok(())
}
