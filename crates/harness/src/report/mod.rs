//! `dynaprune report`: merges finished runs into `runs.csv`, `REPORT.md` and SVG plots.
//!
//! Every number comes from a run's `summary.json`; the report states the commands, commits and
//! machines the runs came from. Means and standard deviations are over seeds.
//!
//! REPORT.md, in order: the note (`--note`: how the grid ran, and the grid's own notes), a summary
//! (one table per budget and prune fraction: accuracy, passes, speed-ups, paired differences),
//! per (dataset, model) the cell table and its charts, the "sometimes samples" table, your runs
//! next to a reference (`--reference`), the paired differences and the fix against the original
//! (unadjusted and Holm-adjusted: [`comparisons`]), time per sample pass, and provenance (which
//! commit ran how many runs).

pub mod comparisons;
pub mod stats;
pub mod svg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::config::{policy_of_method, PolicyArg};
use crate::output;
use crate::run::accounting::Summary;
use crate::run::RunRecord;
pub use comparisons::Comparisons;
pub use stats::{mean_std, t975, Paired};
use svg::{Chart, Series, Style};

/// Flags of `dynaprune report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Directory searched (recursively) for finished runs (`summary.json`).
    #[arg(long)]
    pub runs: PathBuf,
    /// Where runs.csv, REPORT.md and the SVGs go.
    #[arg(long)]
    pub out: PathBuf,
    /// Report title.
    #[arg(long, default_value = "dynaprune results")]
    pub title: String,
    /// A note placed under the title (e.g. how the grid was run, what is partial).
    #[arg(long)]
    pub note: Option<String>,
    /// Finished runs to compare with, cell by cell (e.g. the committed
    /// `results/reference/<preset>/runs`): accuracy difference, bit-identical or not, time ratio.
    #[arg(long)]
    pub reference: Option<PathBuf>,
}

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
        if !["matched", "nominal", "none"].contains(&s.budget.as_str()) {
            bail!("{}: unknown budget `{}` (expected matched, nominal or none)", f.display(), s.budget);
        }
        let epochs = read_overlaps(run_dir)?;
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
        rows.push(RunRow {
            pruned_epochs: s.pruned_epochs,
            never_selected: never,
            always_selected: always,
            train_samples: hist.iter().sum(),
            dir: run_dir.strip_prefix(dir).unwrap_or(run_dir).display().to_string(),
            dataset: s.dataset,
            model: s.model,
            budget: if s.policy == "full" { "none".into() } else { s.budget.clone() },
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
        });
    }
    Ok(rows)
}

/// One (dataset, model, method, budget, prune fraction) cell, aggregated over seeds.
///
/// Speed-ups are *paired by seed*: each run is divided into the full-data run of the same
/// dataset, model and seed, and the ratios are averaged over seeds. The sample-pass bound is the
/// exact ratio of full-data to this run's training sample passes: with the same work per pass, no
/// run can be faster than that, so a measured speed-up above it is timing noise.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Dataset.
    pub dataset: String,
    /// Model.
    pub model: String,
    /// Method (rule variant).
    pub method: String,
    /// Budget (`matched`, `nominal`, or `none` for full data).
    pub budget: String,
    /// Prune fraction.
    pub prune_fraction: f64,
    /// Seeds aggregated.
    pub seeds: usize,
    /// Test accuracy mean.
    pub acc_mean: f64,
    /// Test accuracy sample standard deviation (NaN with one seed).
    pub acc_std: f64,
    /// Training time mean (wall).
    pub train_s: f64,
    /// Training + static scoring mean (wall).
    pub total_s: f64,
    /// Training CPU time mean (NaN when not recorded).
    pub cpu_s: f64,
    /// Fraction of full-data sample passes used.
    pub sample_fraction: f64,
    /// Full-data training passes / this run's: the largest speed-up the work allows.
    pub bound: f64,
    /// Wall-time speed-up over the same seed's full-data run (training time), mean over seeds.
    pub speedup_wall: f64,
    /// CPU-time speed-up over the same seed's full-data run, mean over seeds.
    pub speedup_cpu: f64,
    /// Total-time speed-up (static scoring included), wall, mean over seeds.
    pub speedup_total: f64,
    /// Total-time speed-up in CPU time (training and static scoring), mean over seeds; NaN
    /// unless every paired run recorded both.
    pub speedup_total_cpu: f64,
    /// Seeds whose full-data baseline exists (the speed-ups use only those).
    pub paired_seeds: usize,
    /// Runs whose wall-time speed-up exceeds its bound by more than 5% (timing noise).
    pub noisy_wall: usize,
    /// Runs whose CPU-time speed-up exceeds its bound by more than 5%.
    pub noisy_cpu: usize,
    /// Runs whose total-time speed-up (wall, static scoring included) exceeds its bound by more
    /// than 5%: the bound holds for it too, since scoring only adds time.
    pub noisy_total: usize,
    /// The same for the total-time speed-up in CPU time.
    pub noisy_total_cpu: usize,
    /// Runs whose full-data baseline took another kernel path (another CPU kind): their
    /// speed-ups compare two machines. Runs that did not record their path are not counted.
    pub cross_kernel: usize,
    /// Mean milliseconds of training time per sample pass (training + re-scoring passes).
    pub ms_per_pass: f64,
}

/// What the report says of provenance a run did not record.
pub const UNKNOWN: &str = "unknown";

/// A speed-up counts as timing noise when it exceeds the sample-pass bound by more than this.
pub const NOISE_TOLERANCE: f64 = 0.05;

/// A cell: (dataset, model, method, budget, prune fraction in millionths).
type GroupKey = (String, String, String, String, u64);

fn group_key(r: &RunRow) -> GroupKey {
    (r.dataset.clone(), r.model.clone(), r.method.clone(), r.budget.clone(), (r.prune_fraction * 1e6).round() as u64)
}

/// The runs of each cell.
fn groups(rows: &[RunRow]) -> BTreeMap<GroupKey, Vec<&RunRow>> {
    let mut g: BTreeMap<GroupKey, Vec<&RunRow>> = BTreeMap::new();
    for r in rows {
        g.entry(group_key(r)).or_default().push(r);
    }
    g
}

/// The full-data run of the same dataset, model and seed, if any.
fn baseline<'a>(rows: &'a [RunRow], r: &RunRow) -> Option<&'a RunRow> {
    rows.iter().find(|b| b.method == "full" && b.dataset == r.dataset && b.model == r.model && b.seed == r.seed)
}

/// One run's speed-ups over its baseline (NaN where a time was not recorded).
struct Speedups {
    /// Training wall time.
    wall: f64,
    /// Training CPU time.
    cpu: f64,
    /// Training + static scoring, wall time.
    total: f64,
    /// Training + static scoring, CPU time.
    total_cpu: f64,
    /// Full-data sample passes over the run's.
    bound: f64,
    /// The two runs took different recorded kernel paths.
    cross_kernel: bool,
}

/// The speed-ups of `r` over its baseline `b`.
fn speedups(r: &RunRow, b: &RunRow) -> Speedups {
    let over = |base: f64, this: f64| if base > 0.0 && this > 0.0 { base / this } else { f64::NAN };
    Speedups {
        wall: b.train_s / r.train_s,
        cpu: over(b.cpu_s, r.cpu_s),
        total: b.train_s / r.total_s,
        total_cpu: over(b.cpu_s, r.total_cpu_s),
        bound: b.samples as f64 / r.samples.max(1) as f64,
        cross_kernel: r.kernels != UNKNOWN && b.kernels != UNKNOWN && r.kernels != b.kernels,
    }
}

/// `true` when a measured speed-up exceeds the sample-pass bound by more than
/// [`NOISE_TOLERANCE`].
pub fn is_noise(speedup: f64, bound: f64) -> bool {
    speedup.is_finite() && speedup > bound * (1.0 + NOISE_TOLERANCE)
}

fn mean_of(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Aggregates runs into cells (see [`Cell`] for how speed-ups are paired).
pub fn cells(rows: &[RunRow]) -> Vec<Cell> {
    groups(rows)
        .into_iter()
        .map(|((d, m, p, budget, _), v)| {
            let (acc_mean, acc_std) = mean_std(&v.iter().map(|r| r.final_test_acc).collect::<Vec<_>>());
            let paired: Vec<Speedups> = v.iter().filter_map(|r| baseline(rows, r).map(|b| speedups(r, b))).collect();
            let noisy = |f: fn(&Speedups) -> f64| paired.iter().filter(|x| is_noise(f(x), x.bound)).count();
            let mean = |f: fn(&Speedups) -> f64| mean_of(paired.iter().map(f));
            Cell {
                dataset: d,
                model: m,
                method: p,
                budget,
                prune_fraction: v[0].prune_fraction,
                seeds: v.len(),
                acc_mean,
                acc_std: if v.len() > 1 { acc_std } else { f64::NAN },
                train_s: mean_of(v.iter().map(|r| r.train_s)),
                total_s: mean_of(v.iter().map(|r| r.total_s)),
                cpu_s: mean_of(v.iter().map(|r| if r.cpu_s > 0.0 { r.cpu_s } else { f64::NAN })),
                sample_fraction: mean_of(v.iter().map(|r| r.samples as f64 / r.full_data_samples.max(1) as f64)),
                bound: mean_of(v.iter().map(|r| r.full_data_samples as f64 / r.samples.max(1) as f64)),
                speedup_wall: mean(|x| x.wall),
                speedup_cpu: mean(|x| x.cpu),
                speedup_total: mean(|x| x.total),
                speedup_total_cpu: if paired.iter().all(|x| x.total_cpu.is_finite()) {
                    mean(|x| x.total_cpu)
                } else {
                    f64::NAN
                },
                paired_seeds: paired.len(),
                noisy_wall: noisy(|x| x.wall),
                noisy_cpu: noisy(|x| x.cpu),
                cross_kernel: paired.iter().filter(|x| x.cross_kernel).count(),
                noisy_total: noisy(|x| x.total),
                noisy_total_cpu: noisy(|x| x.total_cpu),
                ms_per_pass: mean_of(v.iter().map(|r| r.ms_per_pass)),
            }
        })
        .collect()
}

/// Per-seed accuracy differences of the runs in `a` against those of `b` with the same seed.
pub fn paired(a: &[&RunRow], b: &[&RunRow]) -> Paired {
    let d: Vec<f64> = a
        .iter()
        .filter_map(|x| b.iter().find(|y| y.seed == x.seed).map(|y| x.final_test_acc - y.final_test_acc))
        .collect();
    Paired::from_diffs(&d)
}

/// Accuracy as "mean ± std (n=k)", or "mean (n=1)" with one seed: a single run has no spread.
fn acc_cell(c: &Cell) -> String {
    if c.seeds > 1 {
        format!("{} ± {} (n={})", pct(c.acc_mean), pct(c.acc_std), c.seeds)
    } else {
        format!("{} (n=1)", pct(c.acc_mean))
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}", 100.0 * v)
    } else {
        "n/a".into()
    }
}

/// " ≠k" after a speed-up when k runs of the cell were timed on another kernel path (CPU kind)
/// than their full-data baseline.
fn cross(k: usize) -> String {
    if k == 0 {
        String::new()
    } else {
        format!(" ≠{k}")
    }
}

/// " ⚠k" after a speed-up when k runs of the cell exceeded their bound (timing noise).
fn flag(k: usize) -> String {
    if k > 0 {
        format!(" ⚠{k}")
    } else {
        String::new()
    }
}

fn x(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}x")
    } else {
        "n/a".into()
    }
}

/// Methods are listed in the order `dynaprune train --policy` declares their policies; variants
/// of one policy by name.
fn policy_rank(method: &str) -> (usize, String) {
    let all = PolicyArg::value_variants();
    // Chart labels carry the budget after the method: `ucb (nominal)`.
    let method = method.split(" (").next().unwrap_or(method);
    let rank = policy_of_method(method).and_then(|a| all.iter().position(|v| *v == a)).unwrap_or(all.len());
    (rank, method.to_string())
}

/// Writes runs.csv, REPORT.md and one pair of SVGs per (dataset, model).
pub fn write(rows: &[RunRow], args: &ReportArgs) -> Result<()> {
    if rows.is_empty() {
        bail!("no finished runs (summary.json) under {}", args.runs.display());
    }
    std::fs::create_dir_all(&args.out)?;
    output::write_csv(&args.out.join("runs.csv"), rows)?;
    let cells = cells(rows);
    output::write_csv(&args.out.join("cells.csv"), &cells)?;
    let comps = Comparisons::of(rows);
    let mut md = intro(args);
    md.push_str(&summary_section(&cells, &comps));
    let pairs: BTreeSet<(String, String)> = cells.iter().map(|c| (c.dataset.clone(), c.model.clone())).collect();
    for (d, m) in &pairs {
        let mut cs: Vec<&Cell> = cells.iter().filter(|c| &c.dataset == d && &c.model == m).collect();
        cs.sort_by(|a, b| {
            policy_rank(&a.method).cmp(&policy_rank(&b.method)).then(a.prune_fraction.total_cmp(&b.prune_fraction))
        });
        md.push_str(&cell_table(d, m, &cs));
        md.push_str(&charts(rows, args, d, m, &cs)?);
    }
    md.push_str(&sometimes_section(rows));
    if let Some(reference) = &args.reference {
        md.push_str(&reference_section(rows, &collect(reference)?, reference));
    }
    md.push_str(&comparisons::paired_section(rows, &comps));
    md.push_str(&comparisons::fix_section(&comps));
    md.push_str(&timing_section(rows));
    md.push_str(&provenance_section(rows));
    output::write_atomic(&args.out.join("REPORT.md"), md.as_bytes())
}

/// The report's title, note and legend.
fn intro(args: &ReportArgs) -> String {
    let mut md = format!("# {}\n\n", args.title);
    if let Some(n) = &args.note {
        md.push_str(n);
        md.push_str("\n\n");
    }
    md.push_str(
        "Test accuracy is the mean ± sample standard deviation over seeds of the accuracy after the last epoch, with the \
         number of seeds; a single run shows `(n=1)` and no spread. *Train* is the wall time of the training epochs \
         (re-scoring, selection, data, compute and score updates; evaluation and checkpoints excluded); *total* adds the \
         static scoring time charged to static methods. *Samples* is the fraction of full-data sample passes used. \
         *Budget*: `matched` cells spend the sample passes of uniform random at the same prune fraction (warm-up and \
         annealing included), `nominal` cells remove the prune fraction in each pruned epoch and add their full-data \
         epochs on top.\n\n",
    );
    md
}

/// The table of one dataset and model's cells, with its note on the bound and timing noise.
fn cell_table(d: &str, m: &str, cs: &[&Cell]) -> String {
    let mut md = String::new();
    md.push_str(&format!("## {d} / {m}\n\n"));
    md.push_str(
        "| method | budget | prune fraction | test acc (%) | samples | bound | speed-up (wall) | speed-up (CPU) | train (s) | ms/pass | total (s) | speed-up (total, wall) | speed-up (total, CPU) |\n",
    );
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for c in cs {
        md.push_str(&format!(
            "| {} | {} | {:.2} | {} | {:.1}% | {} | {}{} | {}{} | {:.1} | {:.3} | {:.1} | {}{} | {}{} |\n",
            c.method,
            c.budget,
            c.prune_fraction,
            acc_cell(c),
            100.0 * c.sample_fraction,
            x(c.bound),
            x(c.speedup_wall),
            flag(c.noisy_wall),
            x(c.speedup_cpu),
            flag(c.noisy_cpu),
            c.train_s,
            c.ms_per_pass,
            c.total_s,
            x(c.speedup_total),
            flag(c.noisy_total),
            x(c.speedup_total_cpu),
            flag(c.noisy_total_cpu)
        ));
    }
    let noisy: usize = cs.iter().map(|c| c.noisy_wall + c.noisy_cpu + c.noisy_total + c.noisy_total_cpu).sum();
    md.push_str(&format!(
        "\n*bound*: full-data training passes / this cell's (the largest speed-up its work allows). Speed-ups \
         divide each run into the full-data run of the **same seed** and average over the seeds that have one. \
         *Total, CPU* charges the static scoring's CPU time: n/a unless every run's scoring recorded it. {}\n\n",
        if noisy > 0 {
            format!(
                "⚠k: k runs of the cell measured a speed-up more than {:.0}% above their bound: that is timing \
                 noise (the machine was busier during the baseline than during the run), not a result; {noisy} \
                 such measurements here.",
                100.0 * NOISE_TOLERANCE
            )
        } else {
            format!("No speed-up exceeds its bound by more than {:.0}%.", 100.0 * NOISE_TOLERANCE)
        }
    ));
    md
}

/// The accuracy charts and the overlap chart of one dataset and model, one set per budget (the
/// full-data reference in each), written next to the report; returns the Markdown that shows
/// them.
fn charts(rows: &[RunRow], args: &ReportArgs, d: &str, m: &str, cs: &[&Cell]) -> Result<String> {
    let mut md = String::new();
    let budgets: BTreeSet<&str> = cs.iter().map(|c| c.budget.as_str()).filter(|b| *b != "none").collect();
    for budget in budgets {
        let budget_cells: Vec<&Cell> =
            cs.iter().copied().filter(|c| c.budget == budget || c.method == "full").collect();
        let slug = format!("{d}-{m}-{budget}").replace(['/', ' '], "_");
        md.push_str(&format!("Budget {budget}:\n\n"));
        let (fa, ft) = (format!("accuracy_vs_prune_fraction_{slug}.svg"), format!("accuracy_vs_time_{slug}.svg"));
        let (acc, time) = accuracy_charts(&format!("{d} / {m}, budget {budget}"), &budget_cells);
        output::write_atomic(&args.out.join(&fa), acc.render().as_bytes())?;
        output::write_atomic(&args.out.join(&ft), time.render().as_bytes())?;
        md.push_str(&format!(
            "![accuracy vs prune fraction]({fa})\n\n![accuracy vs time]({ft})\n\nThe time axis is wall time, as \
             measured: on a shared machine it carries the neighbours' load, so compare rules by the CPU-time \
             columns of the tables.\n\n"
        ));
        let budget_rows: Vec<&RunRow> = rows.iter().filter(|r| r.budget == budget).collect();
        if let Some((chart, pf)) = overlap_chart(&budget_rows, d, m, budget) {
            let fo = format!("overlap_per_epoch_{slug}.svg");
            output::write_atomic(&args.out.join(&fo), chart.render().as_bytes())?;
            md.push_str(&format!(
                "Overlap of each epoch's plan with the previous epoch's, prune fraction {pf:.2}, budget {budget}, mean \
                 over seeds (1.0 = the rule chose the same samples again):\n\n![overlap per epoch]({fo})\n\n"
            ));
        }
    }
    Ok(md)
}

/// Accuracy against prune fraction and against total time, one series per method of `cs`.
fn accuracy_charts(title: &str, cs: &[&Cell]) -> (Chart, Chart) {
    let mut methods: Vec<&str> = cs.iter().map(|c| c.method.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    methods.sort_by_key(|p| policy_rank(p));
    // Show the band where the rules differ: anything more than 5 points below the best cell
    // is clipped to the bottom edge, with its value written there.
    let best = cs.iter().map(|c| 100.0 * c.acc_mean).fold(f64::NEG_INFINITY, f64::max);
    let y_floor = best.is_finite().then_some(best - 5.0);
    let mut acc = Chart {
        y_floor,
        pareto: false,
        title: format!("{title}: accuracy vs prune fraction"),
        x_label: "prune fraction (removed per pruned epoch)".into(),
        y_label: "test accuracy (%)".into(),
        series: vec![],
    };
    let mut time = Chart {
        y_floor,
        pareto: true,
        title: format!("{title}: accuracy vs total time (error bars: std over seeds)"),
        x_label: "total wall time incl. static scoring (s)".into(),
        y_label: "test accuracy (%)".into(),
        series: vec![],
    };
    for p in methods {
        let mut pc: Vec<&&Cell> = cs.iter().filter(|c| c.method == p).collect();
        pc.sort_by(|a, b| a.prune_fraction.total_cmp(&b.prune_fraction));
        let errors: Vec<f64> = pc.iter().map(|c| if c.acc_std.is_finite() { 100.0 * c.acc_std } else { 0.0 }).collect();
        acc.series.push(Series {
            name: p.to_string(),
            points: pc.iter().map(|c| (c.prune_fraction, 100.0 * c.acc_mean)).collect(),
            errors: Some(errors.clone()),
            style: if p == "full" { Style::Reference } else { Style::Line },
        });
        time.series.push(Series {
            name: p.to_string(),
            points: pc.iter().map(|c| (c.total_s, 100.0 * c.acc_mean)).collect(),
            errors: Some(errors),
            style: Style::Points,
        });
    }
    (acc, time)
}

/// The paper's "sometimes samples": how selection spreads over the training set.
fn sometimes_section(rows: &[RunRow]) -> String {
    let mut md = String::new();
    let dynamic: Vec<&RunRow> = rows
        .iter()
        .filter(|r| {
            r.pruned_epochs > 1 && r.train_samples > 0 && policy_of_method(&r.method).is_some_and(PolicyArg::is_dynamic)
        })
        .collect();
    if !dynamic.is_empty() {
        md.push_str("## Sometimes samples\n\nFor dynamic rules: the share of training samples selected in none, some, or all of the pruned epochs, the mean overlap between consecutive pruned epochs' plans, and the samples given a forward-only re-scoring pass (one row per run).\n\n");
        md.push_str("| dataset | method | budget | prune fraction | seed | pruned epochs | never (%) | sometimes (%) | always (%) | mean overlap | re-scored |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let mut d = dynamic;
        // A cell's seeds together: (dataset, budget, method, prune fraction, seed).
        d.sort_by(|a, b| {
            (&a.dataset, &a.budget, policy_rank(&a.method))
                .cmp(&(&b.dataset, &b.budget, policy_rank(&b.method)))
                .then(a.prune_fraction.total_cmp(&b.prune_fraction))
                .then(a.seed.cmp(&b.seed))
        });
        for r in d {
            let n = r.train_samples as f64;
            let (never, always) = (r.never_selected as f64 / n, r.always_selected as f64 / n);
            md.push_str(&format!(
                "| {} | {} | {} | {:.2} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
                r.dataset,
                r.method,
                r.budget,
                r.prune_fraction,
                r.seed,
                r.pruned_epochs,
                100.0 * never,
                100.0 * (1.0 - never - always),
                100.0 * always,
                r.mean_overlap.map_or("n/a".into(), |o| format!("{o:.3}")),
                r.rescore_samples
            ));
        }
        md.push('\n');
    }
    md
}

/// Commits, machines and commands behind the report.
fn provenance_section(rows: &[RunRow]) -> String {
    let mut md = String::new();
    md.push_str("## Provenance\n\n");
    // Which binary ran which runs: commit -> budget -> count.
    let mut commits: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for r in rows {
        *commits.entry(r.commit.as_str()).or_default().entry(r.budget.as_str()).or_default() += 1;
    }
    let machines: BTreeSet<&str> = rows.iter().map(|r| r.machine.as_str()).collect();
    md.push_str(&format!("- runs: {} (per-run rows in `runs.csv`, per-cell aggregates in `cells.csv`)\n", rows.len()));
    md.push_str("- commits (runs by budget):");
    for (c, budgets) in &commits {
        let n: usize = budgets.values().sum();
        let by: Vec<String> = budgets.iter().map(|(b, k)| format!("{k} {b}")).collect();
        md.push_str(&format!("\n  - `{c}`: {n} ({})", by.join(", ")));
    }
    md.push('\n');
    md.push_str(&format!("- machines: {}\n", machines.into_iter().collect::<Vec<_>>().join("; ")));
    let mut paths: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *paths.entry(r.kernels.as_str()).or_default() += 1;
    }
    md.push_str("- kernel paths (runs):");
    for (k, n) in &paths {
        let what = if *k == UNKNOWN { "not recorded (runs made before the path was recorded)" } else { k };
        md.push_str(&format!("\n  - {what}: {n}"));
    }
    md.push('\n');
    if paths.keys().filter(|k| **k != UNKNOWN).count() > 1 {
        md.push_str(
            "- **these runs come from more than one kernel path (CPU kind)**: accuracies of different kinds are mixed \
             in the means above (they differ in the last bits, then in accuracy); speed-ups marked ≠ compare a run \
             with a baseline of another kind\n",
        );
    }
    md.push_str(&format!("- example command (first run): `{}`\n", rows[0].command));
    md.push_str(&format!("- report command: `{}`\n", crate::provenance::command_line()));
    md
}

/// One table per (dataset, model, budget, prune fraction): each rule's accuracy, sample passes
/// and speed-ups beside its paired differences against uniform random and full data, unadjusted
/// and Holm-adjusted (bold when measured after the correction). The same numbers as the tables
/// below, gathered so that one fraction reads at a glance.
fn summary_section(cells: &[Cell], comps: &Comparisons) -> String {
    type TableKey = (String, String, String, u64);
    let mut tables: BTreeMap<TableKey, Vec<&Cell>> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.method != "full") {
        let pf = (c.prune_fraction * 1e6).round() as u64;
        tables.entry((c.dataset.clone(), c.model.clone(), c.budget.clone(), pf)).or_default().push(c);
    }
    if tables.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "## Summary\n\nOne table per prune fraction and budget. *Passes*: the fraction of full-data sample passes \
         used; *bound*: the speed-up that work allows. *CPU*: the training CPU-time speed-up over the same seed's \
         full-data run; *total*: the speed-up with static scoring charged, in CPU time (training plus scoring) where \
         every run of the cell recorded it, otherwise in wall time, marked *(wall)* (⚠k: k runs above their bound \
         by more than 5%, timing noise; ≠k: k runs whose full-data baseline ran on another CPU kind, so that their \
         speed-up compares two machines). *vs random*, *vs full*: the test-accuracy difference in points, paired by seed, \
         with its unadjusted 95% t interval over seeds. {}\n\n",
        comparisons::legend()
    );
    for ((d, m, budget, pf), mut cs) in tables {
        cs.sort_by_key(|c| policy_rank(&c.method));
        md.push_str(&format!("### {d} / {m}: prune fraction {:.2}, budget {budget}\n\n", pf as f64 / 1e6));
        md.push_str(
            "| rule | test acc (%) | passes | bound | CPU | total | vs random (points) | Holm | vs full (points) | Holm |\n\
             |---|---:|---:|---:|---:|---:|---:|---|---:|---|\n",
        );
        if let Some(f) = cells.iter().find(|c| c.method == "full" && c.dataset == d && c.model == m) {
            md.push_str(&format!("| full data | {} | 100.0% | 1.00x | 1.00x | 1.00x | | | | |\n", acc_cell(f)));
        }
        for c in cs {
            let key = (d.clone(), m.clone(), c.method.clone(), budget.clone(), pf);
            let diff = |f: &BTreeMap<GroupKey, stats::Adjusted>| match f.get(&key) {
                Some(a) => (comparisons::unadjusted(&a.paired), comparisons::holm_cell(a)),
                None => (String::new(), String::new()),
            };
            let (vr, vrh) = diff(&comps.vs_random);
            let (vf, vfh) = diff(&comps.vs_full);
            let total = if c.speedup_total_cpu.is_finite() {
                format!("{}{}", x(c.speedup_total_cpu), flag(c.noisy_total_cpu))
            } else {
                format!("{} (wall){}", x(c.speedup_total), flag(c.noisy_total))
            };
            md.push_str(&format!(
                "| {} | {} | {:.1}% | {} | {}{}{} | {total} | {vr} | {vrh} | {vf} | {vfh} |\n",
                c.method,
                acc_cell(c),
                100.0 * c.sample_fraction,
                x(c.bound),
                x(c.speedup_cpu),
                flag(c.noisy_cpu),
                cross(c.cross_kernel),
            ));
        }
        md.push('\n');
    }
    md
}

/// Your runs next to the reference's, matched by (dataset, model, method, budget, prune
/// fraction, seed). *Bit-identical* compares the final test accuracy and loss to the last bit
/// and the sample passes: on CPU the same code and seed must reproduce them exactly.
pub fn reference_section(yours: &[RunRow], reference: &[RunRow], dir: &Path) -> String {
    let key = |r: &RunRow| (group_key(r), r.seed);
    let refs: BTreeMap<_, &RunRow> = reference.iter().map(|r| (key(r), r)).collect();
    let mut md = format!(
        "## Your runs next to the reference\n\nEach of your runs beside the run of the same cell and seed in `{}`. *Bit-identical*: the \
         same final test accuracy and loss to the last bit and the same sample passes. That is expected on CPU for the same \
         code, seed and kernel path; another CPU kind (AVX2 against AVX-512) takes another path through the matrix \
         kernels, whose rounding differs, so its runs differ in the last bits and then in accuracy (*differs, different CPU \
         kernels*). A difference on the same path is a defect. The commits are shown when they differ. *Time* is your \
         training time over the reference's.\n\n\
         | run | your acc (%) | reference acc (%) | difference (points) | bit-identical | time (yours / reference) |\n\
         |---|---:|---:|---:|---|---:|\n",
        crate::provenance::relative_to_checkout(&dir.display().to_string())
    );
    let (mut same, mut matched, mut defects) = (0usize, 0usize, 0usize);
    for r in yours {
        let Some(b) = refs.get(&key(r)) else {
            md.push_str(&format!("| {} | {} | n/a | n/a | no reference run | n/a |\n", r.dir, pct(r.final_test_acc)));
            continue;
        };
        matched += 1;
        let identical = r.final_test_acc.to_bits() == b.final_test_acc.to_bits()
            && r.final_test_loss.to_bits() == b.final_test_loss.to_bits()
            && r.samples == b.samples;
        same += usize::from(identical);
        let verdict = reference_verdict(identical, r, b);
        defects += usize::from(verdict.starts_with("**"));
        md.push_str(&format!(
            "| {} | {} | {} | {:+.2} | {verdict} | {:.2}x |\n",
            r.dir,
            pct(r.final_test_acc),
            pct(b.final_test_acc),
            100.0 * (r.final_test_acc - b.final_test_acc),
            r.train_s / b.train_s
        ));
    }
    md.push_str(&format!("\n{same} of {matched} matched runs are bit-identical to the reference.\n"));
    if defects > 0 {
        md.push_str(&format!(
            "\n**{defects} run(s) differ from the reference on the same kernel path: a defect (the same code, seed and \
             instructions must give the same bits). Please report it with both runs' config.json.**\n"
        ));
    }
    md.push('\n');
    md
}

/// Whether a run that should match its reference does, and if not why: *identical*; *differs,
/// different CPU kernels* (both paths named: the GEMM micro-kernels round differently); *differs,
/// the reference's path not recorded*; or, loudly, *differs on the same kernels*, a defect.
pub fn reference_verdict(identical: bool, r: &RunRow, b: &RunRow) -> String {
    let commits = if r.commit == b.commit {
        String::new()
    } else {
        format!("; commit {} vs {}", short(&r.commit), short(&b.commit))
    };
    match (identical, r.kernels.as_str(), b.kernels.as_str()) {
        (true, _, _) => "identical".into(),
        (false, UNKNOWN, _) | (false, _, UNKNOWN) => {
            format!("differs; kernel path not recorded (yours: {}; reference: {}){commits}", r.kernels, b.kernels)
        }
        (false, y, rf) if y != rf => format!("differs, different CPU kernels (yours: {y}; reference: {rf}){commits}"),
        (false, _, _) => format!("**differs on the same kernels ({}): a defect**{commits}", r.kernels),
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(7)]
}

/// Every run's training time per sample pass, wall and CPU: a run slowed by a neighbour shows up
/// as a high wall figure next to an ordinary CPU one.
fn timing_section(rows: &[RunRow]) -> String {
    let mut md = String::from(
        "## Time per sample pass\n\nTraining time per sample pass (training and re-scoring passes) of every run, wall \
         and process CPU time (both threads), in ms. Identical work should cost the same per pass; a wall figure far \
         above the others, with an ordinary CPU figure, marks a run slowed by another process.\n\n\
         | run | wall ms/pass | CPU ms/pass | peak RSS (MiB) |\n|---|---:|---:|---:|\n",
    );
    for r in rows {
        let cpu = if r.cpu_ms_per_pass.is_finite() { format!("{:.3}", r.cpu_ms_per_pass) } else { "n/a".into() };
        let rss = if r.peak_rss_mib > 0.0 { format!("{:.0}", r.peak_rss_mib) } else { "n/a".into() };
        md.push_str(&format!("| {} | {:.3} | {cpu} | {rss} |\n", r.dir, r.ms_per_pass));
    }
    md.push('\n');
    md
}

/// Overlap per epoch for each dynamic method of (dataset, model) among `rows` (one budget's),
/// mean over seeds, at prune fraction 0.5 (or the first one present); `None` when no run has
/// per-epoch overlaps.
fn overlap_chart(rows: &[&RunRow], d: &str, m: &str, budget: &str) -> Option<(Chart, f64)> {
    let runs: Vec<&RunRow> = rows
        .iter()
        .copied()
        .filter(|r| r.dataset == d && r.model == m && r.pruned_epochs > 0 && r.overlaps.iter().any(Option::is_some))
        .filter(|r| policy_of_method(&r.method).is_some_and(PolicyArg::is_dynamic))
        .collect();
    let fractions: BTreeSet<u64> = runs.iter().map(|r| (r.prune_fraction * 1e6).round() as u64).collect();
    let pf = if fractions.contains(&500_000) { 500_000 } else { *fractions.iter().next()? };
    let mut methods: Vec<&str> = runs.iter().map(|r| r.method.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    methods.sort_by_key(|p| policy_rank(p));
    let mut chart = Chart {
        y_floor: None,
        pareto: false,
        title: format!(
            "{d} / {m}, budget {budget}: overlap with the previous epoch's plan (prune fraction {:.2})",
            pf as f64 / 1e6
        ),
        x_label: "epoch".into(),
        y_label: "overlap".into(),
        series: vec![],
    };
    for meth in methods {
        let rs: Vec<&&RunRow> =
            runs.iter().filter(|r| r.method == meth && (r.prune_fraction * 1e6).round() as u64 == pf).collect();
        let epochs = rs.iter().map(|r| r.overlaps.len()).max().unwrap_or(0);
        let points: Vec<(f64, f64)> = (0..epochs)
            .filter_map(|e| {
                let v: Vec<f64> = rs.iter().filter_map(|r| r.overlaps.get(e).copied().flatten()).collect();
                (!v.is_empty()).then(|| ((e + 1) as f64, v.iter().sum::<f64>() / v.len() as f64))
            })
            .collect();
        if !points.is_empty() {
            chart.series.push(Series { name: meth.to_string(), points, errors: None, style: Style::Line });
        }
    }
    (!chart.series.is_empty()).then_some((chart, pf as f64 / 1e6))
}

/// `dynaprune report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let rows = collect(&args.runs)?;
    write(&rows, args)?;
    println!("report: {} runs -> {}", rows.len(), args.out.join("REPORT.md").display());
    Ok(())
}
