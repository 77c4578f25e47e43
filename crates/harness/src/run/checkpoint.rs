//! A run's checkpoint folder: the model and optimizer (safetensors), the pruner's state, and the
//! accounting so far, written whole into `checkpoint.tmp/` and swapped in with renames, so a
//! crash at any point leaves either the previous or the new checkpoint, complete. Also the
//! checks that decide whether an output folder may be started, resumed or only reported.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dynaprune::{Pruner, PrunerState};
use dynaprune_model::{checkpoint, Network, Sgd};
use serde::{Deserialize, Serialize};

use super::accounting::{EpochRow, Summary};
use crate::config::TrainArgs;
use crate::output;

/// `checkpoint/state.json`. The static scoring's cost is not kept here: a resumed run reads it
/// again from the scores' sidecar (`scores.json`), its one record. (States written before this
/// carried a copy; reading ignores it.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Epochs finished.
    pub completed_epochs: usize,
    /// Their rows.
    pub rows: Vec<EpochRow>,
    /// [`fingerprint`] of the flags that made it.
    pub fingerprint: String,
}

/// The flags that must match for `--resume` (everything that changes results).
pub fn fingerprint(args: &TrainArgs) -> String {
    let mut a = args.clone();
    a.out = PathBuf::new();
    a.resume = false;
    a.stop_after = None;
    a.progress = String::new();
    a.threads = None;
    a.data_dir = None;
    serde_json::to_string(&a).expect("flags serialise")
}

/// What an output folder holds before a run starts.
#[derive(Debug)]
pub enum Existing {
    /// Nothing of a run: start.
    Nothing,
    /// An interrupted run to resume.
    Interrupted,
    /// A finished run (with `--resume`: its summary is the result).
    Finished(Box<Summary>),
}

/// Decides what to do with `out`: refuses to overwrite a finished or interrupted run, and to
/// resume one whose checkpoint is gone; restores a checkpoint left half-swapped by a crash.
pub fn inspect(out: &Path, resume: bool) -> Result<Existing> {
    let summary_path = out.join("summary.json");
    let ck_dir = out.join("checkpoint");
    if summary_path.exists() {
        if resume {
            let s: Summary = serde_json::from_slice(&std::fs::read(&summary_path)?).context("reading summary.json")?;
            return Ok(Existing::Finished(Box::new(s)));
        }
        bail!(
            "{} already holds a finished run (summary.json): choose another --out, or pass --resume to report it",
            out.display()
        );
    }
    recover(out)?;
    if !resume && (ck_dir.exists() || out.join("epochs.csv").exists()) {
        bail!("{} holds an interrupted run: pass --resume to continue it, or choose another --out", out.display());
    }
    // Epochs were recorded but no checkpoint holds them: resuming would silently start over.
    if resume && !ck_dir.exists() && out.join("epochs.csv").exists() {
        bail!(
            "--resume: {} records finished epochs but {} is missing (and no checkpoint.old to recover): the run \
             cannot continue where it stopped; start it again in another --out",
            out.join("epochs.csv").display(),
            ck_dir.display()
        );
    }
    Ok(if resume && ck_dir.exists() { Existing::Interrupted } else { Existing::Nothing })
}

/// Reads the state of the checkpoint in `out`, refusing a damaged one or one made with other
/// flags (never silently starting over).
pub fn read_state(out: &Path, args: &TrainArgs) -> Result<State> {
    let state_path = out.join("checkpoint").join("state.json");
    let bytes = std::fs::read(&state_path)
        .with_context(|| format!("--resume: cannot read {} (the checkpoint is incomplete)", state_path.display()))?;
    let st: State = serde_json::from_slice(&bytes)
        .with_context(|| format!("--resume: {} is not a checkpoint state", state_path.display()))?;
    if st.fingerprint != fingerprint(args) {
        bail!(
            "--resume: the flags differ from the interrupted run's (see {}); rerun with the same flags",
            out.join("config.json").display()
        );
    }
    Ok(st)
}

/// Loads the checkpoint in `out` into the model, optimizer and pruner, and completes the last row
/// of `rows` with the checkpoint's own write time (recorded beside it, in `timing.json`).
pub fn restore(
    out: &Path,
    model: &dyn Network,
    opt: &mut Sgd,
    pruner: &mut Pruner,
    selector: Option<&mut dynaprune::BackpropSelector>,
    rows: &mut [EpochRow],
) -> Result<()> {
    let ck_dir = out.join("checkpoint");
    checkpoint::load(&ck_dir.join("model.safetensors"), model, Some(opt))?;
    let pruner_path = ck_dir.join("pruner.bin");
    let bytes = std::fs::read(&pruner_path).with_context(|| format!("--resume: reading {}", pruner_path.display()))?;
    let state = PrunerState::from_bytes(&bytes).with_context(|| format!("--resume: {}", pruner_path.display()))?;
    pruner.restore(state).with_context(|| format!("--resume: {}", pruner_path.display()))?;
    if let Some(selector) = selector {
        let path = ck_dir.join("selector.bin");
        let bytes = std::fs::read(&path).with_context(|| format!("--resume: reading {}", path.display()))?;
        selector.restore(&bytes).with_context(|| format!("--resume: {}", path.display()))?;
    }
    if let Ok(b) = std::fs::read(ck_dir.join("timing.json")) {
        if let (Ok((e, ck_s, wall)), Some(last)) = (serde_json::from_slice::<(usize, f64, f64)>(&b), rows.last_mut()) {
            if e == last.epoch {
                last.checkpoint_s = ck_s;
                last.wall_s = wall;
            }
        }
    }
    Ok(())
}

/// Records the checkpoint's own write time and the epoch's wall time beside it, so a resumed
/// run's accounting is complete.
pub fn write_timing(out: &Path, epoch: usize, checkpoint_s: f64, wall_s: f64) -> Result<()> {
    output::write_json(&out.join("checkpoint").join("timing.json"), &(epoch, checkpoint_s, wall_s))
}

/// If a previous process died between the two renames of [`write()`], puts the last complete
/// checkpoint back in place.
pub fn recover(out: &Path) -> Result<()> {
    let (ck, old) = (out.join("checkpoint"), out.join("checkpoint.old"));
    if !ck.exists() && old.exists() {
        std::fs::rename(&old, &ck).with_context(|| format!("restoring {}", old.display()))?;
    }
    Ok(())
}

/// Writes the whole checkpoint into `checkpoint.tmp/`, then swaps it in with renames.
/// `selector`: a batch-level rule's selector state (`selector.bin`).
pub fn write(
    out: &Path,
    model: &dyn Network,
    opt: &Sgd,
    pruner: &PrunerState,
    selector: Option<&[u8]>,
    st: &State,
) -> Result<()> {
    let (ck, tmp, old) = (out.join("checkpoint"), out.join("checkpoint.tmp"), out.join("checkpoint.old"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    checkpoint::save(&tmp.join("model.safetensors"), model, Some(opt))?;
    output::write_atomic(&tmp.join("pruner.bin"), &pruner.to_bytes())?;
    if let Some(bytes) = selector {
        output::write_atomic(&tmp.join("selector.bin"), bytes)?;
    }
    output::write_json(&tmp.join("state.json"), st)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if ck.exists() {
        std::fs::rename(&ck, &old)?;
    }
    std::fs::rename(&tmp, &ck).with_context(|| format!("moving {} into place", ck.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}
