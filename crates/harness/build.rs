//! Records the commit the `dynaprune` binary is built from, so that every result names the code
//! that produced it (not whatever the working directory holds when the binary runs).
//!
//! `DYNAPRUNE_BUILD_COMMIT` is `git rev-parse HEAD`, suffixed `-dirty` when the tracked sources
//! the binary is built from (`crates/`, `Cargo.toml`, `Cargo.lock`) differed from it at build
//! time, or
//! `unknown` outside a git checkout (e.g. a source tarball).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(root).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    // Rebuild the stamp when the sources change (edit, revert) or when HEAD moves (commit, checkout).
    for p in ["crates", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let commit = match git(&root, &["rev-parse", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            if let Some(git_dir) = git(&root, &["rev-parse", "--absolute-git-dir"]) {
                let git_dir = PathBuf::from(git_dir);
                for p in ["HEAD", "index", "refs/heads", "packed-refs"] {
                    if git_dir.join(p).exists() {
                        println!("cargo:rerun-if-changed={}", git_dir.join(p).display());
                    }
                }
            }
            let status = git(
                &root,
                &["status", "--porcelain", "--untracked-files=no", "--", "crates", "Cargo.toml", "Cargo.lock"],
            );
            if status.is_some_and(|s| !s.is_empty()) {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=DYNAPRUNE_BUILD_COMMIT={commit}");
}
