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

mod cells;
pub mod comparisons;
mod load;
mod markdown;
mod plots;
pub mod stats;
pub mod svg;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::output;
pub use cells::{cells, is_noise, paired, Cell, NOISE_TOLERANCE};
pub use comparisons::Comparisons;
pub use load::{collect, RunRow, UNKNOWN};
pub use markdown::{reference_section, reference_verdict};
pub use stats::{mean_std, t975, Paired};

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
    let mut md = markdown::intro(args);
    md.push_str(&markdown::summary_section(&cells, &comps));
    let pairs: BTreeSet<(String, String)> = cells.iter().map(|c| (c.dataset.clone(), c.model.clone())).collect();
    for (d, m) in &pairs {
        let mut cs: Vec<&Cell> = cells.iter().filter(|c| &c.dataset == d && &c.model == m).collect();
        cs.sort_by(|a, b| {
            cells::policy_rank(&a.method)
                .cmp(&cells::policy_rank(&b.method))
                .then(a.prune_fraction.total_cmp(&b.prune_fraction))
        });
        md.push_str(&markdown::cell_table(d, m, &cs));
        md.push_str(&plots::charts(rows, args, d, m, &cs)?);
    }
    md.push_str(&markdown::sometimes_section(rows));
    if let Some(reference) = &args.reference {
        md.push_str(&reference_section(rows, &collect(reference)?, reference));
    }
    md.push_str(&comparisons::paired_section(rows, &comps));
    md.push_str(&comparisons::fix_section(&comps));
    md.push_str(&markdown::timing_section(rows));
    md.push_str(&markdown::provenance_section(rows));
    output::write_atomic(&args.out.join("REPORT.md"), md.as_bytes())
}

/// `dynaprune report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let rows = collect(&args.runs)?;
    write(&rows, args)?;
    println!("report: {} runs -> {}", rows.len(), args.out.join("REPORT.md").display());
    Ok(())
}
