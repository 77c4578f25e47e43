//! `RESULTS.md`: what the committed grid measured, generated from the committed reports so that it
//! cannot drift from them.
//!
//! Everything in it is read from `results/reference/cpu/REPORT.md`: the *Summary* tables (copied
//! as they are) and the *Sometimes samples* table. The sentences are built from those cells: a
//! difference is called **measured** only when the report's Holm verdict is a difference,
//! *exploratory* when only its unadjusted 95% interval excludes 0, and *not shown* otherwise. The
//! wording of each claim is fixed here; its numbers and verdicts are not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use dynaprune::catalog::{self as c, Method, BUDGET_MATCHED};

use crate::reproduce::plain_label;

/// The committed report RESULTS.md is generated from, relative to the workspace root.
pub const CPU_REPORT: &str = "results/reference/cpu/REPORT.md";
/// Where RESULTS.md goes, relative to the workspace root.
pub const RESULTS_MD: &str = "RESULTS.md";

/// One row of a Summary table: a rule at one prune fraction and budget.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Column name -> cell text, as in the report.
    pub cells: BTreeMap<String, String>,
}

impl Row {
    fn get(&self, column: &str) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }
}

/// A Summary table: its (prune fraction, budget) and rows by rule.
#[derive(Debug, Clone)]
pub struct Table {
    /// The section heading's text after `### `.
    pub heading: String,
    /// Prune fraction, e.g. `0.50`.
    pub fraction: String,
    /// `matched` or `nominal`.
    pub budget: String,
    /// The table's Markdown, heading included, as in the report.
    pub markdown: String,
    /// Rows by rule.
    pub rows: BTreeMap<String, Row>,
}

/// The Summary section of a report: its introduction and its tables.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The paragraph(s) under `## Summary`, before the first table.
    pub intro: String,
    /// The tables in order.
    pub tables: Vec<Table>,
}

/// The text of section `## {name}` (without its heading), up to the next `## ` heading.
fn section<'a>(report: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("\n## {name}\n");
    let start = report.find(&head)? + head.len();
    let rest = &report[start..];
    Some(rest.find("\n## ").map_or(rest, |end| &rest[..end + 1]))
}

fn split_row(line: &str) -> Vec<String> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    t.split('|').map(|c| c.trim().to_string()).collect()
}

/// Parses the Summary section of a report written by `dynaprune report`.
pub fn parse_summary(report: &str) -> Result<Summary> {
    let text = section(report, "Summary").context("the report has no `## Summary` section")?;
    let mut parts = text.split("\n### ");
    let intro = parts.next().unwrap_or("").trim().to_string();
    let mut tables = Vec::new();
    for part in parts {
        let heading = part.lines().next().unwrap_or("").trim().to_string();
        // "fashion-mnist / resnet8: prune fraction 0.50, budget matched"
        let (fraction, budget) = heading
            .split_once("prune fraction ")
            .and_then(|(_, r)| r.split_once(", budget "))
            .map(|(f, b)| (f.trim().to_string(), b.trim().to_string()))
            .with_context(|| format!("a Summary table heading not in the expected form: `{heading}`"))?;
        let lines: Vec<&str> = part.lines().filter(|l| l.trim_start().starts_with('|')).collect();
        let Some((header, body)) = lines.split_first() else { bail!("the Summary table `{heading}` has no rows") };
        // Two columns are called `Holm`: the one after `vs full` becomes `Holm (full)`.
        let mut columns = split_row(header);
        for i in 1..columns.len() {
            if columns[i] == "Holm" && columns[i - 1].starts_with("vs full") {
                columns[i] = "Holm (full)".into();
            }
        }
        let mut rows = BTreeMap::new();
        for line in body.iter().filter(|l| !l.contains("---")) {
            let cells = split_row(line);
            let row = Row { cells: columns.iter().cloned().zip(cells).collect() };
            rows.insert(row.get("rule").to_string(), row);
        }
        let markdown = format!("### {}", part.trim_end());
        tables.push(Table { heading, fraction, budget, markdown, rows });
    }
    if tables.is_empty() {
        bail!("the report's Summary section has no tables");
    }
    Ok(Summary { intro, tables })
}

/// Mean overlap and mean share never selected, over seeds, of one method's runs at one prune
/// fraction and budget, from the report's *Sometimes samples* table.
pub fn sometimes(report: &str, method: &str, fraction: &str, budget: &str) -> Option<(f64, f64, usize)> {
    let text = section(report, "Sometimes samples")?;
    let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with('|')).collect();
    let (header, body) = lines.split_first()?;
    let columns = split_row(header);
    let col = |name: &str| columns.iter().position(|c| c == name);
    let (m, b, f, never, overlap) =
        (col("method")?, col("budget")?, col("prune fraction")?, col("never (%)")?, col("mean overlap")?);
    let (mut o, mut nv, mut k) = (0.0, 0.0, 0usize);
    for line in body.iter().filter(|l| !l.contains("---")) {
        let c = split_row(line);
        if c.get(m)? == method && c.get(b)? == budget && c.get(f)? == fraction {
            o += c.get(overlap)?.parse::<f64>().ok()?;
            nv += c.get(never)?.parse::<f64>().ok()?;
            k += 1;
        }
    }
    (k > 0).then(|| (o / k as f64, nv / k as f64, k))
}

/// What a paired difference shows, in words, from its unadjusted and Holm cells.
pub fn verdict(diff: &str, holm: &str) -> String {
    let diff = diff.trim();
    if diff.is_empty() {
        return "n/a".into();
    }
    if diff.contains("(n=1)") {
        return format!("{} (one seed: no interval)", diff.replace(" (n=1)", ""));
    }
    let p = holm
        .split_once("p=")
        .and_then(|(_, r)| r.split_whitespace().next())
        .map(|t| match t.strip_prefix('<') {
            Some(v) => format!(", Holm p < {v}"),
            None => format!(", Holm p {t}"),
        })
        .unwrap_or_default();
    if holm.starts_with("**lower**") || holm.starts_with("**higher**") {
        return format!("**measured**: {diff}{p}");
    }
    let excludes_zero = diff
        .split_once('[')
        .and_then(|(_, r)| r.trim_end_matches(']').split_once(','))
        .and_then(|(lo, hi)| Some((lo.trim().parse::<f64>().ok()?, hi.trim().parse::<f64>().ok()?)))
        .is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0);
    if excludes_zero {
        format!("exploratory: {diff}{p}")
    } else {
        format!("not shown: {diff}{p}")
    }
}

fn table<'a>(s: &'a Summary, fraction: &str) -> Option<&'a Table> {
    s.tables.iter().find(|t| t.fraction == fraction && t.budget == BUDGET_MATCHED)
}

fn pct(fraction: &str) -> String {
    fraction.parse::<f64>().map_or(fraction.to_string(), |f| format!("{:.0}%", 100.0 * f))
}

/// One bullet: a rule's accuracy, cost and its two comparisons at one fraction.
fn rule_line(t: &Table, rule: &str, name: &str) -> Option<String> {
    let r = t.rows.get(rule)?;
    let mut extra = String::new();
    let fwd = r.get("extra fwd");
    if !fwd.is_empty() && fwd != "0.0%" {
        let _ = write!(extra, ", plus {fwd} of the passes as forward-only passes");
    }
    let vs_random = if rule == c::RANDOM.name {
        String::new()
    } else {
        format!("; vs uniform random {}", verdict(r.get("vs random (points)"), r.get("Holm")))
    };
    Some(format!(
        "- {name} (`{rule}`): {} on {} of the passes{extra}, CPU-time speed-up {}{vs_random}; vs full data {}.",
        r.get("test acc (%)").replace(" (n=", "% (n="),
        r.get("passes"),
        r.get("CPU"),
        verdict(r.get("vs full (points)"), r.get("Holm (full)")),
    ))
}

/// Renders RESULTS.md from the committed cpu report's text.
pub fn render(cpu_report: &str) -> Result<String> {
    let s = parse_summary(cpu_report)?;
    let mut md = String::new();
    md.push_str("# Results\n\n");
    md.push_str(
        "<!-- Generated by `cargo xtask report` from results/reference/cpu/REPORT.md; do not edit: a test \
         checks that it matches the committed report. -->\n\n",
    );
    md.push_str(
        "What the committed grid measured: the `cpu` preset of `cargo xtask reproduce`, Fashion-MNIST, ResNet-8, \
         10 epochs, batch 128, SGD with Nesterov momentum and a cosine learning rate, on a 2-core AMD EPYC, every \
         rule at prune fractions 0.3, 0.5 and 0.7. **Equal budgets:** at prune fraction f every rule spends the \
         sample passes uniform random spends, warm-up and annealing epochs included (`--budget matched`); \
         KAKURENBO and InfoBatch at 70% cannot be held to it and say so in their *passes*. Each seed has its own \
         full-data run; differences are **paired by seed**, with 95% t intervals over the seeds (3 or 5: the \
         tables' `n`). **Corrected for many comparisons** (Holm-Bonferroni over each family of the report): a \
         difference is *measured* only if it survives the correction; one that only its unadjusted interval \
         shows is *exploratory*, a direction, not a result; otherwise it is *not shown*. The full report, with \
         every run, plot, per-epoch timing and provenance: [results/reference/cpu/REPORT.md]\
         (results/reference/cpu/REPORT.md). How each rule works and what is reconstructed: \
         [docs/RULES.md](docs/RULES.md).\n\n",
    );

    measured_section(&mut md, &s);
    claims_section(&mut md, &s, cpu_report);
    beyond_section(&mut md, &s);
    tables_section(&mut md, &s);
    Ok(md)
}

/// Every difference that survives the correction.
fn measured_section(md: &mut String, s: &Summary) {
    md.push_str("## Measured after the correction\n\n");
    let mut any = false;
    for t in s.tables.iter().filter(|t| t.budget == BUDGET_MATCHED) {
        for (rule, r) in &t.rows {
            for (diff, holm, against) in [
                ("vs random (points)", r.get("Holm"), "uniform random"),
                ("vs full (points)", r.get("Holm (full)"), "full data"),
            ] {
                if holm.starts_with("**") {
                    any = true;
                    let _ = writeln!(
                        md,
                        "- at {} (budget matched), `{rule}` against {against}: {}",
                        pct(&t.fraction),
                        verdict(r.get(diff), holm)
                    );
                }
            }
        }
    }
    if !any {
        md.push_str("Nothing: no difference survives the correction.\n");
    }
    md.push('\n');
}

/// The paper's claims, each judged on the comparisons that decide it.
fn claims_section(md: &mut String, s: &Summary, cpu_report: &str) {
    md.push_str("## The paper's claims, on this setup\n\n");
    md.push_str("**Up to 2x less training time without significant accuracy loss** (the paper's dynamic rules):\n\n");
    for f in ["0.30", "0.50", "0.70"] {
        let Some(t) = table(s, f) else { continue };
        let _ = writeln!(md, "At {}:", pct(f));
        for (rule, name) in [
            (c::RANDOM.name.to_string(), "uniform random"),
            (c::EPSILON_GREEDY.name.to_string(), "epsilon-greedy"),
            (c::UCB.name.to_string(), "UCB"),
        ] {
            if let Some(line) = rule_line(t, &rule, name) {
                md.push_str(&line);
                md.push('\n');
            }
        }
        md.push('\n');
    }
    md.push_str("**Score-based dynamic rules beat uniform random at the same budget:**\n\n");
    vs_random_lines(
        md,
        s,
        &[
            c::EPSILON_GREEDY.name.to_string(),
            c::UCB.name.to_string(),
            plain_label(&c::EPSILON_GREEDY),
            plain_label(&c::UCB),
        ],
    );
    md.push_str("\n**Dynamic pruning beats static pruning at the same budget** (each static rule against dynamic uniform random; a negative difference means static is worse):\n\n");
    let statics: Vec<String> =
        c::RULES.iter().filter(|r| r.kind == c::Kind::Static).map(|r| r.name.to_string()).collect();
    vs_random_lines(md, s, &statics);
    md.push_str("\n**Static scoring costs time** (speed-up of training alone, *CPU*, against the whole cost with the scoring charged, *total*; *(wall)* where the scoring recorded wall time only):\n\n");
    if let Some(t) = table(s, "0.50") {
        for rule in c::RULES.iter().filter(|r| r.scorer.is_some()).map(|r| r.name.to_string()) {
            if let Some(r) = t.rows.get(&rule) {
                let _ = writeln!(md, "- at 50%, `{rule}`: training {}, total {}", r.get("CPU"), r.get("total"));
            }
        }
    }
    md.push_str("\n**The useful subset changes during training (\"sometimes samples\")**: mean overlap of consecutive pruned epochs' plans, and the share of samples never selected in a pruned epoch (means over seeds; counts, not tests):\n\n");
    for f in ["0.30", "0.50", "0.70"] {
        for (method, name) in [
            (c::UCB.name.to_string(), "UCB (staleness fix)"),
            (plain_label(&c::UCB), "UCB as described"),
            (c::EPSILON_GREEDY.name.to_string(), "epsilon-greedy (fix)"),
            (plain_label(&c::EPSILON_GREEDY), "epsilon-greedy as described"),
            (c::RANDOM.name.to_string(), "uniform random"),
        ] {
            if let Some((overlap, never, k)) = sometimes(cpu_report, &method, f, BUDGET_MATCHED) {
                let _ = writeln!(
                    md,
                    "- at {}, {name}: overlap {overlap:.3}, never selected {never:.1}% ({k} seeds)",
                    pct(f)
                );
            }
        }
    }
}

/// One line per fraction and rule: the rule against uniform random, with its verdict.
fn vs_random_lines(md: &mut String, s: &Summary, rules: &[String]) {
    for f in ["0.30", "0.50", "0.70"] {
        let Some(t) = table(s, f) else { continue };
        for rule in rules {
            if let Some(r) = t.rows.get(rule) {
                let _ = writeln!(
                    md,
                    "- at {}, `{rule}` vs uniform random: {}",
                    pct(f),
                    verdict(r.get("vs random (points)"), r.get("Holm"))
                );
            }
        }
    }
}

/// The rules beyond the paper, at each fraction.
fn beyond_section(md: &mut String, s: &Summary) {
    md.push_str("\n## Beyond the paper\n\n");
    for f in ["0.30", "0.50", "0.70"] {
        let Some(t) = table(s, f) else { continue };
        let _ = writeln!(md, "At {}:", pct(f));
        let lr_hidden = Method { lr_hidden: true, ..Method::of(&c::KAKURENBO) }.to_string();
        for (rule, name) in [
            (c::INFOBATCH.name.to_string(), "InfoBatch"),
            (c::RS2.name.to_string(), "RS2"),
            (c::KAKURENBO.name.to_string(), "KAKURENBO"),
            (lr_hidden, "KAKURENBO, factor from the hidden fraction"),
            (c::SETA.name.to_string(), "SeTa"),
            (c::SELECTIVE_BACKPROP.name.to_string(), "Selective-Backprop"),
        ] {
            if let Some(line) = rule_line(t, &rule, name) {
                md.push_str(&line);
                md.push('\n');
            }
        }
        md.push('\n');
    }
}

/// The matched-budget Summary tables as the report has them, and the other reports.
fn tables_section(md: &mut String, s: &Summary) {
    md.push_str("## The tables\n\n");
    md.push_str("Copied from the report's *Summary* (budget matched; the one-seed nominal grid is in the report).\n\n");
    md.push_str(&s.intro);
    md.push_str("\n\n");
    for t in s.tables.iter().filter(|t| t.budget == BUDGET_MATCHED) {
        md.push_str(&t.markdown);
        md.push_str("\n\n");
    }
    md.push_str(
        "## Other committed reports\n\n\
         - [results/reference/quick/REPORT.md](results/reference/quick/REPORT.md): the default `cargo xtask \
         reproduce` (6 rules at 50%, one seed, nominal budget), to put your own runs next to.\n\
         - [results/reference/staleness-sweep/README.md](results/reference/staleness-sweep/README.md): how the \
         staleness fix of UCB and epsilon-greedy was chosen ([docs/RULES.md](docs/RULES.md)).\n",
    );
}

/// Regenerates `RESULTS.md` in `repo` from the committed cpu report.
pub fn write(repo: &Path) -> Result<()> {
    let report_path = repo.join(CPU_REPORT);
    let report = std::fs::read_to_string(&report_path)
        .with_context(|| format!("cannot read {}: RESULTS.md is generated from it", report_path.display()))?;
    let md = render(&report).with_context(|| format!("reading {}", report_path.display()))?;
    dynaprune_io::write_atomic(&repo.join(RESULTS_MD), md.as_bytes())
        .with_context(|| format!("cannot write {}", repo.join(RESULTS_MD).display()))
}
