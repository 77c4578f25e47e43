//! Where a result came from: command line, commit, machine, time.

use serde::{Deserialize, Serialize};

/// Provenance of a run or report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// The command line, as typed.
    pub command: String,
    /// `git rev-parse HEAD` of the working directory, with `-dirty` if it has changes, or
    /// `unknown`.
    pub commit: String,
    /// CPU model, core count and memory, plus the device used.
    pub machine: String,
    /// dynaprune version.
    pub version: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The current commit, `-dirty` if the tree has uncommitted changes.
pub fn commit() -> String {
    match git(&["rev-parse", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".into(),
    }
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
        command: std::env::args().collect::<Vec<_>>().join(" "),
        commit: commit(),
        machine: machine(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}
