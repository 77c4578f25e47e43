//! `dynaprune report`: merges finished runs into `runs.csv`, `REPORT.md` and SVG plots.
//!
//! Every number comes from a run's `summary.json`; the report states the commands, commits and
//! machines the runs came from. Means and standard deviations are over seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::accounting::Summary;
use crate::config::{policy_of_method, PolicyArg};
use crate::output;
use crate::svg::{Chart, Series, Style};
use crate::train::RunConfig;

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
    /// Nominal prune fraction.
    pub prune_fraction: f64,
    /// Seed.
    pub seed: u64,
    /// Epochs.
    pub epochs: usize,
    /// Final test accuracy.
    pub final_test_acc: f64,
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
    /// Mean overlap between consecutive pruned epochs' plans (empty when undefined).
    pub mean_overlap: Option<f64>,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
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
    /// Command.
    pub command: String,
    /// Per-epoch overlap with the previous plan (from `epochs.csv`; not a CSV column).
    #[serde(skip)]
    pub overlaps: Vec<Option<f64>>,
}

/// The per-epoch `overlap` column of a run's `epochs.csv` (empty if the file is missing).
fn read_overlaps(run_dir: &Path) -> Result<Vec<Option<f64>>> {
    let path = run_dir.join("epochs.csv");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut rd = csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let col = rd
        .headers()?
        .iter()
        .position(|h| h == "overlap")
        .with_context(|| format!("{} has no `overlap` column", path.display()))?;
    let mut out = Vec::new();
    for rec in rd.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        out.push(rec.get(col).and_then(|v| v.parse::<f64>().ok()));
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
        let cfg: Option<RunConfig> =
            std::fs::read(run_dir.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        // Summaries written before `method` existed: the config says which rule variant ran.
        let method = if !s.method.is_empty() {
            s.method.clone()
        } else {
            cfg.as_ref().map_or_else(|| s.policy.clone(), |c| c.args.method_label())
        };
        let (commit, machine, command) = cfg
            .map(|c| (c.provenance.commit, c.provenance.machine, c.provenance.command))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into(), "unknown".into()));
        let hist = &s.selection_histogram;
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
            policy: s.policy,
            method,
            prune_fraction: s.prune_fraction,
            seed: s.seed,
            epochs: s.epochs,
            final_test_acc: s.final_test_acc,
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
            mean_overlap: s.mean_overlap,
            peak_rss_mib: s.peak_rss_mib,
            commit,
            machine,
            command,
            overlaps: read_overlaps(run_dir)?,
        });
    }
    Ok(rows)
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 { (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (m, sd)
}

/// One (dataset, model, method, prune fraction) cell, aggregated over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Dataset.
    pub dataset: String,
    /// Model.
    pub model: String,
    /// Method (rule variant).
    pub method: String,
    /// Prune fraction.
    pub prune_fraction: f64,
    /// Seeds aggregated.
    pub seeds: usize,
    /// Test accuracy mean.
    pub acc_mean: f64,
    /// Test accuracy standard deviation.
    pub acc_std: f64,
    /// Training time mean.
    pub train_s: f64,
    /// Training + static scoring mean.
    pub total_s: f64,
    /// Fraction of full-data sample passes used.
    pub sample_fraction: f64,
    /// Full-data training time / this training time (same dataset and model).
    pub speedup_train: f64,
    /// Full-data total time / this total time (scoring included).
    pub speedup_total: f64,
}

/// Aggregates runs into cells; speed-ups are relative to the `full` policy's mean time for the
/// same dataset and model (NaN when no full-data run exists).
pub fn cells(rows: &[RunRow]) -> Vec<Cell> {
    let mut groups: BTreeMap<(String, String, String, u64), Vec<&RunRow>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.dataset.clone(), r.model.clone(), r.method.clone(), (r.prune_fraction * 1e6).round() as u64))
            .or_default()
            .push(r);
    }
    let full: BTreeMap<(String, String), f64> = groups
        .iter()
        .filter(|((_, _, p, _), _)| p == "full")
        .map(|((d, m, _, _), v)| ((d.clone(), m.clone()), mean_std(&v.iter().map(|r| r.train_s).collect::<Vec<_>>()).0))
        .collect();
    groups
        .into_iter()
        .map(|((d, m, p, _), v)| {
            let (acc_mean, acc_std) = mean_std(&v.iter().map(|r| r.final_test_acc).collect::<Vec<_>>());
            let train_s = mean_std(&v.iter().map(|r| r.train_s).collect::<Vec<_>>()).0;
            let total_s = mean_std(&v.iter().map(|r| r.total_s).collect::<Vec<_>>()).0;
            let frac =
                mean_std(&v.iter().map(|r| r.samples as f64 / r.full_data_samples.max(1) as f64).collect::<Vec<_>>()).0;
            let base = full.get(&(d.clone(), m.clone())).copied().unwrap_or(f64::NAN);
            Cell {
                dataset: d,
                model: m,
                prune_fraction: v[0].prune_fraction,
                method: p,
                seeds: v.len(),
                acc_mean,
                acc_std,
                train_s,
                total_s,
                sample_fraction: frac,
                speedup_train: base / train_s,
                speedup_total: base / total_s,
            }
        })
        .collect()
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}", 100.0 * v)
    } else {
        "n/a".into()
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
    let mut md = format!("# {}\n\n", args.title);
    if let Some(n) = &args.note {
        md.push_str(n);
        md.push_str("\n\n");
    }
    md.push_str(
        "Test accuracy is the mean ± standard deviation over seeds of the accuracy after the last epoch. \
         *Train* is the wall time of the training epochs (selection, data, compute and score updates; evaluation and \
         checkpoints excluded); *total* adds the static scoring time charged to static methods. Speed-ups are relative to \
         the full-data run of the same dataset and model. *Samples* is the fraction of full-data sample passes used.\n\n",
    );
    let pairs: BTreeSet<(String, String)> = cells.iter().map(|c| (c.dataset.clone(), c.model.clone())).collect();
    for (d, m) in &pairs {
        let mut cs: Vec<&Cell> = cells.iter().filter(|c| &c.dataset == d && &c.model == m).collect();
        cs.sort_by(|a, b| {
            policy_rank(&a.method).cmp(&policy_rank(&b.method)).then(a.prune_fraction.total_cmp(&b.prune_fraction))
        });
        md.push_str(&format!("## {d} / {m}\n\n"));
        md.push_str("| method | prune fraction | seeds | test acc (%) | samples | train (s) | speed-up (train) | total (s) | speed-up (total) |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for c in &cs {
            md.push_str(&format!(
                "| {} | {:.2} | {} | {} ± {} | {:.0}% | {:.1} | {} | {:.1} | {} |\n",
                c.method,
                c.prune_fraction,
                c.seeds,
                pct(c.acc_mean),
                pct(c.acc_std),
                100.0 * c.sample_fraction,
                c.train_s,
                x(c.speedup_train),
                c.total_s,
                x(c.speedup_total)
            ));
        }
        let slug = format!("{d}-{m}").replace(['/', ' '], "_");
        let methods: BTreeSet<&str> = cs.iter().map(|c| c.method.as_str()).collect();
        let mut methods: Vec<&str> = methods.into_iter().collect();
        methods.sort_by_key(|p| policy_rank(p));
        let mut acc = Chart {
            title: format!("{d} / {m}: accuracy vs prune fraction"),
            x_label: "prune fraction (removed per pruned epoch)".into(),
            y_label: "test accuracy (%)".into(),
            series: vec![],
        };
        let mut time = Chart {
            title: format!("{d} / {m}: accuracy vs total time"),
            x_label: "total time incl. static scoring (s)".into(),
            y_label: "test accuracy (%)".into(),
            series: vec![],
        };
        for p in &methods {
            let mut pc: Vec<&&Cell> = cs.iter().filter(|c| c.method == *p).collect();
            pc.sort_by(|a, b| a.prune_fraction.total_cmp(&b.prune_fraction));
            let style = if *p == "full" { Style::Reference } else { Style::Line };
            acc.series.push(Series {
                name: p.to_string(),
                points: pc.iter().map(|c| (c.prune_fraction, 100.0 * c.acc_mean)).collect(),
                errors: Some(pc.iter().map(|c| 100.0 * c.acc_std).collect()),
                style,
            });
            time.series.push(Series {
                name: p.to_string(),
                points: pc.iter().map(|c| (c.total_s, 100.0 * c.acc_mean)).collect(),
                errors: Some(pc.iter().map(|c| 100.0 * c.acc_std).collect()),
                style: Style::Points,
            });
        }
        let (fa, ft) = (format!("accuracy_vs_prune_fraction_{slug}.svg"), format!("accuracy_vs_time_{slug}.svg"));
        output::write_atomic(&args.out.join(&fa), acc.render().as_bytes())?;
        output::write_atomic(&args.out.join(&ft), time.render().as_bytes())?;
        md.push_str(&format!("\n![accuracy vs prune fraction]({fa})\n\n![accuracy vs time]({ft})\n\n"));
        if let Some((chart, pf)) = overlap_chart(rows, d, m) {
            let fo = format!("overlap_per_epoch_{slug}.svg");
            output::write_atomic(&args.out.join(&fo), chart.render().as_bytes())?;
            md.push_str(&format!(
                "Overlap of each epoch's plan with the previous epoch's, prune fraction {pf:.2}, mean over seeds \
                 (1.0 = the rule chose the same samples again):\n\n![overlap per epoch]({fo})\n\n"
            ));
        }
    }
    // The paper's "sometimes samples": how selection spreads over the training set.
    let dynamic: Vec<&RunRow> = rows
        .iter()
        .filter(|r| {
            r.pruned_epochs > 1 && r.train_samples > 0 && policy_of_method(&r.method).is_some_and(PolicyArg::is_dynamic)
        })
        .collect();
    if !dynamic.is_empty() {
        md.push_str("## Sometimes samples\n\nFor dynamic rules: the share of training samples selected in none, some, or all of the pruned epochs, the mean overlap between consecutive pruned epochs' plans, and the samples given a forward-only re-scoring pass (one row per run).\n\n");
        md.push_str("| dataset | method | prune fraction | seed | pruned epochs | never (%) | sometimes (%) | always (%) | mean overlap | re-scored |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let mut d = dynamic;
        d.sort_by(|a, b| {
            (&a.dataset, policy_rank(&a.method), a.seed)
                .cmp(&(&b.dataset, policy_rank(&b.method), b.seed))
                .then(a.prune_fraction.total_cmp(&b.prune_fraction))
        });
        for r in d {
            let n = r.train_samples as f64;
            let (never, always) = (r.never_selected as f64 / n, r.always_selected as f64 / n);
            md.push_str(&format!(
                "| {} | {} | {:.2} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
                r.dataset,
                r.method,
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
    md.push_str("## Provenance\n\n");
    let commits: BTreeSet<&str> = rows.iter().map(|r| r.commit.as_str()).collect();
    let machines: BTreeSet<&str> = rows.iter().map(|r| r.machine.as_str()).collect();
    md.push_str(&format!("- runs: {} (per-run rows in `runs.csv`, per-cell aggregates in `cells.csv`)\n", rows.len()));
    md.push_str(&format!(
        "- commits: {}\n",
        commits.into_iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
    ));
    md.push_str(&format!("- machines: {}\n", machines.into_iter().collect::<Vec<_>>().join("; ")));
    md.push_str(&format!("- example command (first run): `{}`\n", rows[0].command));
    md.push_str(&format!("- report command: `{}`\n", std::env::args().collect::<Vec<_>>().join(" ")));
    output::write_atomic(&args.out.join("REPORT.md"), md.as_bytes())
}

/// Overlap per epoch for each dynamic method of (dataset, model), mean over seeds, at prune
/// fraction 0.5 (or the first one present); `None` when no run has per-epoch overlaps.
fn overlap_chart(rows: &[RunRow], d: &str, m: &str) -> Option<(Chart, f64)> {
    let runs: Vec<&RunRow> = rows
        .iter()
        .filter(|r| r.dataset == d && r.model == m && r.pruned_epochs > 0 && r.overlaps.iter().any(Option::is_some))
        .filter(|r| policy_of_method(&r.method).is_some_and(PolicyArg::is_dynamic))
        .collect();
    let fractions: BTreeSet<u64> = runs.iter().map(|r| (r.prune_fraction * 1e6).round() as u64).collect();
    let pf = if fractions.contains(&500_000) { 500_000 } else { *fractions.iter().next()? };
    let mut methods: Vec<&str> = runs.iter().map(|r| r.method.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    methods.sort_by_key(|p| policy_rank(p));
    let mut chart = Chart {
        title: format!("{d} / {m}: overlap with the previous epoch's plan (prune fraction {:.2})", pf as f64 / 1e6),
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
