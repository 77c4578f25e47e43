//! The report's SVG charts: accuracy against prune fraction and against time, and each epoch's
//! overlap with the previous plan ([`super::svg`] draws them).

use std::collections::BTreeSet;

use anyhow::Result;

use super::cells::{policy_rank, Cell, FULL_METHOD, NO_BUDGET};
use super::load::RunRow;
use super::svg::{Chart, Series, Style};
use super::ReportArgs;
use crate::config::{policy_of_method, PolicyArg};
use crate::output;

/// The accuracy charts and the overlap chart of one dataset and model, one set per budget (the
/// full-data reference in each), written next to the report; returns the Markdown that shows
/// them.
pub(crate) fn charts(rows: &[RunRow], args: &ReportArgs, d: &str, m: &str, cs: &[&Cell]) -> Result<String> {
    let mut md = String::new();
    let budgets: BTreeSet<&str> = cs.iter().map(|c| c.budget.as_str()).filter(|b| *b != NO_BUDGET).collect();
    for budget in budgets {
        let budget_cells: Vec<&Cell> =
            cs.iter().copied().filter(|c| c.budget == budget || c.method == FULL_METHOD).collect();
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
            style: if p == FULL_METHOD { Style::Reference } else { Style::Line },
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
