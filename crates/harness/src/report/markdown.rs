//! The report's Markdown: the introduction, the summary, the cell tables, the "sometimes samples"
//! table, your runs next to a reference, time per pass and provenance.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::cells::{group_key, policy_rank, Cell, GroupKey, FULL_METHOD, NOISE_TOLERANCE};
use super::comparisons::{self, Comparisons};
use super::load::{RunRow, UNKNOWN};
use super::stats;
use super::ReportArgs;
use crate::config::{policy_of_method, PolicyArg};

/// The report's title, note and legend.
pub(crate) fn intro(args: &ReportArgs) -> String {
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

/// The table of one dataset and model's cells, with its note on the bound and timing noise.
pub(crate) fn cell_table(d: &str, m: &str, cs: &[&Cell]) -> String {
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

/// The paper's "sometimes samples": how selection spreads over the training set.
pub(crate) fn sometimes_section(rows: &[RunRow]) -> String {
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
pub(crate) fn provenance_section(rows: &[RunRow]) -> String {
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
pub(crate) fn summary_section(cells: &[Cell], comps: &Comparisons) -> String {
    type TableKey = (String, String, String, u64);
    let mut tables: BTreeMap<TableKey, Vec<&Cell>> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.method != FULL_METHOD) {
        let pf = (c.prune_fraction * 1e6).round() as u64;
        tables.entry((c.dataset.clone(), c.model.clone(), c.budget.clone(), pf)).or_default().push(c);
    }
    if tables.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "## Summary\n\nOne table per prune fraction and budget. *Passes*: the fraction of full-data sample passes \
         used for training; *bound*: the speed-up that work allows. *Extra fwd*: forward-only passes on top of them \
         (re-scoring, Selective-Backprop's candidate passes), as a fraction of the full-data passes; their time is \
         in *CPU*, so no bound covers it. *CPU*: the training CPU-time speed-up over the same seed's \
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
            "| rule | test acc (%) | passes | extra fwd | bound | CPU | total | vs random (points) | Holm | vs full (points) | Holm |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n",
        );
        if let Some(f) = cells.iter().find(|c| c.method == FULL_METHOD && c.dataset == d && c.model == m) {
            md.push_str(&format!("| full data | {} | 100.0% | 0.0% | 1.00x | 1.00x | 1.00x | | | | |\n", acc_cell(f)));
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
                "| {} | {} | {:.1}% | {:.1}% | {} | {}{}{} | {total} | {vr} | {vrh} | {vf} | {vfh} |\n",
                c.method,
                acc_cell(c),
                100.0 * c.sample_fraction,
                100.0 * c.forward_fraction,
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
pub(crate) fn timing_section(rows: &[RunRow]) -> String {
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
