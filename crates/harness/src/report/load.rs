//! Loading finished runs: every `summary.json` under a folder, with its `config.json`
//! provenance and its per-epoch phases and overlaps, as one [`RunRow`] each.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use dynaprune::catalog::{BUDGET_MATCHED, BUDGET_NOMINAL, BUDGET_NONE, FULL};

use crate::run::accounting::Summary;
use crate::run::RunRecord;

/// What the report says of provenance a run did not record.
pub const UNKNOWN: &str = "unknown";

/// One finished run with its provenance.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Run directory.
    pub dir: String,
    /// Dataset.
    pub dataset: String,
    /// Model.
    pub model: String,
    /// Policy.
    pub policy: String,
    /// The rule variant (`ucb`, `ucb-plain`, `ucb+rescore2`, ...): what the tables group by.
    pub method: String,
    /// Sample-pass budget (`matched`, `nominal`; `none` for full data).
    pub budget: String,
    /// Nominal prune fraction.
    pub prune_fraction: f64,
    /// Seed.
    pub seed: u64,
    /// Epochs.
    pub epochs: usize,
    /// Final test accuracy.
    pub final_test_acc: f64,
    /// Final test loss.
    pub final_test_loss: f64,
    /// Best test accuracy.
    pub best_test_acc: f64,
    /// Samples trained on.
    pub samples: usize,
    /// Samples of full data.
    pub full_data_samples: usize,
    /// Training time.
    pub train_s: f64,
    /// Static scoring time charged.
    pub static_scoring_s: f64,
    /// Training + scoring.
    pub total_s: f64,
    /// Selection time.
    pub select_s: f64,
    /// Data waiting time.
    pub data_s: f64,
    /// Compute time.
    pub compute_s: f64,
    /// Score update time.
    pub observe_s: f64,
    /// Evaluation time (not part of total).
    pub eval_s: f64,
    /// Forward-only re-scoring time (part of train).
    pub rescore_s: f64,
    /// Samples forwarded by re-scoring passes.
    pub rescore_samples: usize,
    /// Process CPU seconds over the training epochs.
    pub cpu_s: f64,
    /// Process CPU seconds of the static scoring charged (0 for other rules; NaN where the
    /// scoring recorded wall time only).
    pub static_scoring_cpu_s: f64,
    /// `cpu_s + static_scoring_cpu_s` (NaN when either is unknown).
    pub total_cpu_s: f64,
    /// Mean overlap between consecutive pruned epochs' plans (empty when undefined).
    pub mean_overlap: Option<f64>,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// Training wall time per sample pass (training + re-scoring passes), ms: slow neighbours
    /// show up here.
    pub ms_per_pass: f64,
    /// The same in CPU time (NaN when not recorded).
    pub cpu_ms_per_pass: f64,
    /// Pruned epochs.
    pub pruned_epochs: usize,
    /// Samples never selected in a pruned epoch.
    pub never_selected: usize,
    /// Samples selected in every pruned epoch.
    pub always_selected: usize,
    /// Training samples.
    pub train_samples: usize,
    /// Commit.
    pub commit: String,
    /// Machine.
    pub machine: String,
    /// The kernel path the run took (`dynaprune_model::cpu::kernel_path`), or `unknown` for
    /// runs made before it was recorded: runs on the same path compute bit-identical results.
    pub kernels: String,
    /// The CPU's x86 features, or `unknown`.
    pub cpu_features: String,
    /// Command.
    pub command: String,
    /// Per-epoch overlap with the previous plan (from `epochs.csv`; not a CSV column).
    #[serde(skip)]
    pub overlaps: Vec<Option<f64>>,
    /// Per-epoch phase (from `epochs.csv`; not a CSV column).
    #[serde(skip)]
    pub phases: Vec<String>,
}

/// The per-epoch `(phase, overlap)` columns of a run's `epochs.csv` (empty if the file is
/// missing).
fn read_overlaps(run_dir: &Path) -> Result<Vec<(String, Option<f64>)>> {
    let path = run_dir.join("epochs.csv");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut rd = csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let headers = rd.headers()?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| format!("{} has no `{name}` column", path.display()))
    };
    let (phase, overlap) = (col("phase")?, col("overlap")?);
    let mut out = Vec::new();
    for rec in rd.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        out.push((rec.get(phase).unwrap_or("").to_string(), rec.get(overlap).and_then(|v| v.parse::<f64>().ok())));
    }
    Ok(out)
}

fn find_summaries(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = entry?.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "checkpoint" || n == "checkpoint.tmp" || n == "checkpoint.old") {
                continue;
            }
            find_summaries(&p, out)?;
        } else if p.file_name().is_some_and(|n| n == "summary.json") {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads every finished run under `dir`, sorted by directory.
pub fn collect(dir: &Path) -> Result<Vec<RunRow>> {
    let mut files = Vec::new();
    find_summaries(dir, &mut files)?;
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let s: Summary = serde_json::from_slice(&std::fs::read(&f)?)
            .with_context(|| format!("{} is not a run summary", f.display()))?;
        let run_dir = f.parent().unwrap_or(dir);
        let cfg: Option<RunRecord> =
            std::fs::read(run_dir.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if ![BUDGET_MATCHED, BUDGET_NOMINAL, BUDGET_NONE].contains(&s.budget.as_str()) {
            bail!("{}: unknown budget `{}` (expected matched, nominal or none)", f.display(), s.budget);
        }
        let epochs = read_overlaps(run_dir)?;
        rows.push(row(dir, run_dir, s, cfg, &epochs));
    }
    Ok(rows)
}

/// One run's row: its summary, the provenance of its `config.json` (when readable) and its
/// per-epoch `(phase, overlap)`; `dir` is the folder searched, whose paths the row is relative to.
fn row(dir: &Path, run_dir: &Path, s: Summary, cfg: Option<RunRecord>, epochs: &[(String, Option<f64>)]) -> RunRow {
    // Summaries written before `method` existed: the config says which rule variant ran.
    let method = if !s.method.is_empty() {
        s.method.clone()
    } else {
        cfg.as_ref().map_or_else(|| s.policy.clone(), |c| c.args.method_label())
    };
    let prov = cfg.map(|c| c.provenance);
    let known = |v: Option<String>| v.unwrap_or_else(|| UNKNOWN.into());
    let (commit, machine, command) = prov
        .as_ref()
        .map(|p| (p.commit.clone(), p.machine.clone(), p.command.clone()))
        .unwrap_or_else(|| (UNKNOWN.into(), UNKNOWN.into(), UNKNOWN.into()));
    let kernels = known(prov.as_ref().and_then(|p| p.kernels.clone()));
    let cpu_features = known(prov.and_then(|p| p.cpu_features));
    let hist = &s.selection_histogram;
    // Summaries written before scoring CPU time was recorded carry none: unknown, unless
    // nothing was scored.
    let scoring_cpu = if s.static_scoring_s == 0.0 { 0.0 } else { s.static_scoring_cpu_s.unwrap_or(f64::NAN) };
    let (never, always) =
        if s.pruned_epochs > 0 && !hist.is_empty() { (hist[0], *hist.last().expect("non-empty")) } else { (0, 0) };
    RunRow {
        pruned_epochs: s.pruned_epochs,
        never_selected: never,
        always_selected: always,
        train_samples: hist.iter().sum(),
        dir: run_dir.strip_prefix(dir).unwrap_or(run_dir).display().to_string(),
        dataset: s.dataset,
        model: s.model,
        budget: if s.policy == FULL.name { BUDGET_NONE.into() } else { s.budget.clone() },
        ms_per_pass: 1e3 * s.train_s / (s.samples + s.rescore_samples).max(1) as f64,
        cpu_ms_per_pass: if s.cpu_s > 0.0 {
            1e3 * s.cpu_s / (s.samples + s.rescore_samples).max(1) as f64
        } else {
            f64::NAN
        },
        policy: s.policy,
        method,
        prune_fraction: s.prune_fraction,
        seed: s.seed,
        epochs: s.epochs,
        final_test_acc: s.final_test_acc,
        final_test_loss: s.final_test_loss,
        best_test_acc: s.best_test_acc,
        samples: s.samples,
        full_data_samples: s.full_data_samples,
        train_s: s.train_s,
        static_scoring_s: s.static_scoring_s,
        total_s: s.total_s,
        select_s: s.select_s,
        data_s: s.data_s,
        compute_s: s.compute_s,
        observe_s: s.observe_s,
        eval_s: s.eval_s,
        rescore_s: s.rescore_s,
        rescore_samples: s.rescore_samples,
        cpu_s: s.cpu_s,
        static_scoring_cpu_s: scoring_cpu,
        total_cpu_s: if s.cpu_s > 0.0 { s.cpu_s + scoring_cpu } else { f64::NAN },
        // Summaries written before `mean_overlap` existed: from the run's epochs.csv.
        mean_overlap: s
            .mean_overlap
            .or_else(|| crate::run::accounting::mean_pruned_overlap(epochs.iter().map(|e| (e.0.as_str(), e.1)))),
        peak_rss_mib: s.peak_rss_mib,
        commit,
        machine,
        kernels,
        cpu_features,
        command,
        phases: epochs.iter().map(|e| e.0.clone()).collect(),
        overlaps: epochs.iter().map(|e| e.1).collect(),
    }
}
