//! Where a result came from: command line, commit, machine, time.

use serde::{Deserialize, Serialize};

/// Provenance of a run or report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// The command line, as typed.
    pub command: String,
    /// The commit the binary was built from, with `-dirty` if its sources had uncommitted
    /// changes at build time, or `unknown` (see [`commit`]).
    pub commit: String,
    /// CPU model, core count and memory, plus the device used.
    pub machine: String,
    /// dynaprune version.
    pub version: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// The x86 features the kernels dispatch on that this CPU has
    /// (`dynaprune_model::cpu::features`); absent in records made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_features: Option<String>,
    /// The kernel path of a training run (`dynaprune_model::cpu::kernel_path`): runs on the same
    /// path compute bit-identical results; absent before it was recorded and outside runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<String>,
}

/// The commit the running binary was built from (see `build.rs`): `-dirty` if its sources
/// differed from that commit, `unknown` outside a git checkout. Recorded at build time, so a
/// binary that keeps running while the working tree changes still names its own code.
pub fn commit() -> String {
    env!("DYNAPRUNE_BUILD_COMMIT").to_string()
}

/// A one-line description of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()))
        .map(|kb| format!(", {:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores{mem}, {}", std::env::consts::OS)
}

/// Provenance of the current process.
pub fn current() -> Provenance {
    Provenance {
        command: command_line(),
        commit: commit(),
        machine: machine(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        cpu_features: Some(dynaprune_model::cpu::features()),
        kernels: None,
    }
}

/// The checkout this binary was built from (two levels above the harness crate).
fn checkout_root() -> std::path::PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().and_then(std::path::Path::parent).unwrap_or(crate_dir).to_path_buf()
}

/// `text` with the checkout's absolute path written relative to the checkout (`/home/u/dynaprune/
/// results/cpu` -> `results/cpu`): recorded commands and paths must not carry the machine's
/// layout into committed results.
pub fn relative_to_checkout(text: &str) -> String {
    let root = checkout_root();
    let root = root.to_string_lossy();
    if root.len() <= 1 {
        return text.to_string();
    }
    text.replace(&format!("{root}/"), "").replace(root.as_ref(), ".")
}

/// This process's command line, paths inside the checkout made relative to it, and the program
/// by its name alone: where this copy of the binary lives (a frozen copy in `/tmp` for a long
/// grid, say) is the machine's business; the commit it was built from is recorded next to it.
pub fn command_line() -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(first) = args.first_mut() {
        if let Some(name) = std::path::Path::new(first.as_str()).file_name() {
            *first = name.to_string_lossy().into_owned();
        }
    }
    relative_to_checkout(&args.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_names_the_program_not_where_it_lives() {
        let c = command_line();
        let program = c.split(' ').next().unwrap();
        assert!(!program.contains('/'), "program recorded by name: {c}");
    }

    #[test]
    fn commit_names_the_checkout_this_binary_was_built_from() {
        let c = commit();
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        match head {
            // Built and tested from the same checkout: the stamp is HEAD, maybe `-dirty`.
            Some(h) => assert!(c == h || c == format!("{h}-dirty"), "build commit {c} vs HEAD {h}"),
            None => assert_eq!(c, "unknown"),
        }
    }
}
