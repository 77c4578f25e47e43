//! # dynaprune-io — writing a file so that no reader ever sees half of it
//!
//! The bytes go to a temporary file next to the target, which is then renamed over it (atomic on
//! POSIX file systems). The one implementation the workspace uses: data fixtures
//! (`dynaprune-data`), checkpoints (`dynaprune-model`, `dynaprune-harness`), results and reports
//! (`dynaprune-harness`, `xtask`). It is a crate of its own so that the pruning crate holds the
//! selection rules and nothing else; it needs nothing but `std`.
//!
//! Why not the `tempfile` crate's `NamedTempFile::persist`: it does the same rename, but creates
//! its file with mode 0600 (results must stay readable to the group on a shared cluster
//! filesystem) and brings a dependency tree for eight lines of `std`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically, creating missing parent directories.
///
/// The temporary name is unique per process and call (`<path>.<pid>.<k>.tmp`), so concurrent
/// writers of the same file (shards of a grid writing one report) never rename each other's
/// half-written file. On error the temporary file is removed and the error names the file.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("dynaprune-io-doc-{}", std::process::id()));
/// let file = dir.join("state.bin");
/// dynaprune_io::write_atomic(&file, b"hello")?;
/// assert_eq!(std::fs::read(&file)?, b"hello");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let named =
        |what: &str, p: &Path, e: io::Error| io::Error::new(e.kind(), format!("cannot {what} {}: {e}", p.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| named("create directory", parent, e))?;
    }
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let k = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.{k}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(named("write", &tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        named("move into place", path, e)
    })
}
