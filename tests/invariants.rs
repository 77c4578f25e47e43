//! Invariants of the workspace (ARCHITECTURE.md): the pruning crate never depends on a tensor
//! library; the design card's layout is in place; README names the test command CI runs.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace")
}

/// Names of tensor / deep-learning libraries that must never enter `dynaprune`'s dependencies.
const TENSOR_LIBS: [&str; 14] = [
    "candle",
    "tch",
    "torch",
    "ndarray",
    "burn",
    "dfdx",
    "tensorflow",
    "ort",
    "tract",
    "arrayfire",
    "nalgebra",
    "gemm",
    "luminal",
    "safetensors",
];

#[test]
fn the_pruning_crate_has_no_tensor_library_in_its_dependency_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: HashMap<&str, &str> =
        packages.iter().map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap())).collect();
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap();
    let root_id = packages.iter().find(|p| p["name"] == "dynaprune").unwrap()["id"].as_str().unwrap();
    // Walk the normal (non-dev, non-build) dependency closure.
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in node(id)["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            if normal {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let closure: BTreeSet<&str> = seen.iter().map(|id| names[id]).collect();
    for name in &closure {
        assert!(
            !TENSOR_LIBS.iter().any(|t| name.starts_with(t)),
            "dynaprune depends on `{name}` (closure: {closure:?})"
        );
    }
    assert!(closure.len() < 40, "dynaprune's dependency closure grew to {} crates: {closure:?}", closure.len());
    // And the manifest itself does not mention candle, as a cheap second line of defence.
    let manifest = std::fs::read_to_string(root().join("crates/pruning/Cargo.toml")).unwrap();
    assert!(!manifest.lines().any(|l| l.trim_start().starts_with("candle")));
}

#[test]
fn the_design_card_layout_is_in_place() {
    for p in [
        "Cargo.toml",
        "README.md",
        "ARCHITECTURE.md",
        ".cargo/config.toml",
        ".ci/run",
        "crates/pruning/Cargo.toml",
        "crates/data/Cargo.toml",
        "crates/model/Cargo.toml",
        "crates/harness/Cargo.toml",
        "xtask/Cargo.toml",
        "data/README.md",
        "results/README.md",
        "scripts/cuda-env.sh",
    ] {
        assert!(root().join(p).exists(), "{p} is missing");
    }
    let alias = std::fs::read_to_string(root().join(".cargo/config.toml")).unwrap();
    assert!(alias.contains("xtask = \"run --quiet --package xtask --\""));
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        readme.contains("cargo test --workspace --release") && ci.contains("cargo test --workspace --release"),
        "README and .ci/run name the same test command"
    );
    assert!(readme.contains("cargo xtask reproduce"));
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    assert!(arch.contains("never depends on candle"));
}

/// Committed results carry no machine's checkout path: recorded commands and folders are
/// relative to the checkout. Checks for this checkout's absolute path and, since a clean clone
/// lives elsewhere than the machine that produced the results, for any absolute path that points
/// into a checkout (`/.../target/release/...`, `/.../results/...`).
#[test]
fn no_machine_paths_in_committed_results() {
    let here = root().to_string_lossy().to_string();
    let mut offenders = Vec::new();
    // The committed files (your own grids under results/<preset>/ are ignored by git).
    let listed = Command::new("git").args(["ls-files", "-z", "results"]).current_dir(root()).output().unwrap();
    assert!(listed.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&listed.stderr));
    let files: Vec<std::path::PathBuf> = listed
        .stdout
        .split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| root().join(String::from_utf8_lossy(f).as_ref()))
        .collect();
    assert!(files.len() > 10, "results/ holds the committed reference runs");
    for p in files {
        {
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            for token in text.split(|c: char| c.is_whitespace() || "\"'`(),=".contains(c)) {
                let absolute =
                    token.starts_with('/') && (token.contains("/target/release/") || token.contains("/results/"));
                if token.contains(&here) || absolute {
                    offenders.push(format!("{}: {token}", p.strip_prefix(root()).unwrap_or(&p).display()));
                    break;
                }
            }
        }
    }
    assert!(offenders.is_empty(), "absolute machine paths in committed results:\n{}", offenders.join("\n"));
}
