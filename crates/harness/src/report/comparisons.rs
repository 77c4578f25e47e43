//! Every paired accuracy comparison the report makes, corrected for multiplicity: three
//! families, each Holm-Bonferroni adjusted on its own ([`super::stats`]):
//!
//! - **vs random**: each cell against uniform random of the same budget and prune fraction;
//! - **vs full**: each cell against full data;
//! - **fix vs original**: each rule against its original form (`<rule>-plain`: UCB and
//!   epsilon-greedy without the staleness fix), same budget and prune fraction: the fix's own
//!   claim;
//! - **variant vs rule**: each `<rule>+<variant>` cell (`random+warmup1`, `kakurenbo+lrhidden`)
//!   against its rule, same budget and prune fraction: what the variant changes.
//!
//! The unadjusted 95% intervals stay beside the adjusted ones: a difference that only the
//! unadjusted interval shows is exploratory.

use std::collections::BTreeMap;

use super::cells::{groups, paired, policy_rank, GroupKey, FULL_METHOD};

/// The method every pruned cell is compared with.
const RANDOM_METHOD: &str = dynaprune::catalog::RANDOM.name;
use super::load::RunRow;
use super::stats::{holm, Adjusted, Paired, ALPHA};

/// The suffix that names a rule's original form (`ucb-plain`).
const ORIGINAL: &str = "-plain";

/// The three families, keyed by the cell compared.
#[derive(Debug, Default)]
pub struct Comparisons {
    /// Each cell minus uniform random (same budget and fraction).
    pub vs_random: BTreeMap<GroupKey, Adjusted>,
    /// Each cell minus full data.
    pub vs_full: BTreeMap<GroupKey, Adjusted>,
    /// Each fixed rule minus its original form, keyed by the fixed rule's cell.
    pub fix: BTreeMap<GroupKey, Adjusted>,
    /// Each `<rule>+<variant>` cell minus its rule, keyed by the variant's cell.
    pub variant: BTreeMap<GroupKey, Adjusted>,
}

fn adjust(family: Vec<(GroupKey, Paired)>) -> BTreeMap<GroupKey, Adjusted> {
    let (keys, pairs): (Vec<GroupKey>, Vec<Paired>) = family.into_iter().unzip();
    keys.into_iter().zip(holm(&pairs)).collect()
}

impl Comparisons {
    /// Every comparison the runs allow (cells with at least one paired seed).
    pub fn of(rows: &[RunRow]) -> Self {
        let groups = groups(rows);
        let (mut vs_random, mut vs_full, mut fix, mut variant) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, runs) in groups.iter().filter(|(k, _)| k.2 != FULL_METHOD) {
            let (d, m, meth, budget, pf) = k;
            if meth != RANDOM_METHOD {
                if let Some(rr) = groups.get(&(d.clone(), m.clone(), RANDOM_METHOD.into(), budget.clone(), *pf)) {
                    push(&mut vs_random, k, paired(runs, rr));
                }
            }
            let full: Vec<&RunRow> =
                rows.iter().filter(|r| r.method == FULL_METHOD && &r.dataset == d && &r.model == m).collect();
            push(&mut vs_full, k, paired(runs, &full));
            let original = (d.clone(), m.clone(), format!("{meth}{ORIGINAL}"), budget.clone(), *pf);
            if let Some(orig) = groups.get(&original) {
                push(&mut fix, k, paired(runs, orig));
            }
            if let Some((rule, _)) = meth.split_once('+') {
                if let Some(base) = groups.get(&(d.clone(), m.clone(), rule.to_string(), budget.clone(), *pf)) {
                    push(&mut variant, k, paired(runs, base));
                }
            }
        }
        Self { vs_random: adjust(vs_random), vs_full: adjust(vs_full), fix: adjust(fix), variant: adjust(variant) }
    }
}

fn push(family: &mut Vec<(GroupKey, Paired)>, k: &GroupKey, p: Paired) {
    if p.n > 0 {
        family.push((k.clone(), p));
    }
}

/// "+0.31 [+0.05, +0.57] (n=3)": the unadjusted difference with its number of paired seeds.
fn with_n(p: &Paired) -> String {
    if p.lo.is_finite() && p.hi.is_finite() {
        format!("{} (n={})", unadjusted(p), p.n)
    } else {
        unadjusted(p)
    }
}

/// "+0.31 [+0.05, +0.57]" (unadjusted, points), or "+0.31 (n=1)".
pub fn unadjusted(p: &Paired) -> String {
    if p.lo.is_finite() && p.hi.is_finite() {
        format!("{:+.2} [{:+.2}, {:+.2}]", 100.0 * p.mean, 100.0 * p.lo, 100.0 * p.hi)
    } else {
        format!("{:+.2} (n={})", 100.0 * p.mean, p.n)
    }
}

/// The Holm-adjusted verdict with its p-value and interval: "**higher** p=0.012 [+0.10, +1.48]"
/// (bold when measured after correction), "n.s. p=0.52 [-1.02, +1.64]", or "" without a p-value.
pub fn holm_cell(a: &Adjusted) -> String {
    if !a.p_holm.is_finite() {
        return String::new();
    }
    let iv = format!("[{:+.2}, {:+.2}]", 100.0 * a.lo, 100.0 * a.hi);
    match a.verdict() {
        v @ ("higher" | "lower") => format!("**{v}** p={} {iv}", p_str(a.p_holm)),
        _ => format!("n.s. p={} {iv}", p_str(a.p_holm)),
    }
}

fn p_str(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// The explanation every table that shows Holm columns refers to.
pub fn legend() -> String {
    format!(
        "*Holm*: the verdict after the Holm-Bonferroni correction over the comparison's family (all \"vs random\" \
         comparisons of this report, all \"vs full\", all \"fix vs original\", all \"variant vs rule\"), its \
         adjusted p-value and its adjusted \
         interval (the t interval at level 1 - {ALPHA}/(m - r + 1), r the comparison's Holm rank, capped at the first \
         rank not rejected: it excludes 0 exactly when the verdict is a difference). **Bold**: measured after the \
         correction; *n.s.*: not significant after it. A difference that only the unadjusted 95% interval shows is \
         exploratory."
    )
}

fn family_size(f: &BTreeMap<GroupKey, Adjusted>) -> usize {
    f.values().next().map_or(0, |a| a.family)
}

/// Paired accuracy differences against dynamic random and against full data, seed by seed, with
/// unadjusted 95% t intervals and the Holm columns.
pub fn paired_section(rows: &[RunRow], c: &Comparisons) -> String {
    let groups = groups(rows);
    let mut keys: Vec<&GroupKey> = groups.keys().filter(|(_, _, m, _, _)| m != FULL_METHOD).collect();
    keys.sort_by(|a, b| (&a.0, &a.1, &a.3, policy_rank(&a.2), a.4).cmp(&(&b.0, &b.1, &b.3, policy_rank(&b.2), b.4)));
    if keys.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "## Paired differences\n\nTest accuracy of each cell minus that of dynamic random (same budget and prune \
         fraction) and of full data, paired by seed: the mean difference in points and its unadjusted 95% interval from \
         the t distribution over seeds (n = paired seeds), then the Holm-adjusted verdict ({} comparisons against \
         random, {} against full data). {}\n\n\
         | dataset | method | budget | prune fraction | vs random (points) | Holm | vs full data (points) | Holm |\n\
         |---|---|---|---:|---:|---|---:|---|\n",
        family_size(&c.vs_random),
        family_size(&c.vs_full),
        legend()
    );
    let cell = |f: &BTreeMap<GroupKey, Adjusted>, k: &GroupKey| match f.get(k) {
        Some(a) => (with_n(&a.paired), holm_cell(a)),
        None => ("n/a".to_string(), String::new()),
    };
    for k in keys {
        let (d, _, meth, budget, pf) = k;
        let (r, rh) = cell(&c.vs_random, k);
        let (f, fh) = cell(&c.vs_full, k);
        md.push_str(&format!("| {d} | {meth} | {budget} | {:.2} | {r} | {rh} | {f} | {fh} |\n", *pf as f64 / 1e6));
    }
    md.push('\n');
    md
}

/// Each fixed rule against its original form (the staleness fix's own comparison), and each
/// variant against its rule.
pub fn fix_section(c: &Comparisons) -> String {
    let mut md = family_table(
        &c.fix,
        &format!(
            "## The fix against the original\n\nEach rule minus its original form (`<rule>{ORIGINAL}`: without the \
             staleness fix), same budget and prune fraction, paired by seed; Holm over these {} comparisons.",
            family_size(&c.fix)
        ),
        "fixed - original (points)",
    );
    md.push_str(&family_table(
        &c.variant,
        &format!(
            "## Variants against their rule\n\nEach `<rule>+<variant>` cell minus its rule (`random+warmup1`: one \
             full-data warm-up epoch; `kakurenbo+lrhidden`: the learning-rate factor from the fraction actually hidden), \
             same budget and prune fraction, paired by seed; Holm over these {} comparisons.",
            family_size(&c.variant)
        ),
        "variant - rule (points)",
    ));
    md
}

fn family_table(f: &BTreeMap<GroupKey, Adjusted>, head: &str, column: &str) -> String {
    if f.is_empty() {
        return String::new();
    }
    let mut keys: Vec<&GroupKey> = f.keys().collect();
    keys.sort_by(|a, b| (&a.0, &a.1, &a.3, policy_rank(&a.2), a.4).cmp(&(&b.0, &b.1, &b.3, policy_rank(&b.2), b.4)));
    let mut md = format!(
        "{head} {}\n\n| dataset | rule | budget | prune fraction | {column} | Holm |\n|---|---|---|---:|---:|---|\n",
        legend()
    );
    for k in keys {
        let a = &f[k];
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {} |\n",
            k.0,
            k.2,
            k.3,
            k.4 as f64 / 1e6,
            with_n(&a.paired),
            holm_cell(a)
        ));
    }
    md.push('\n');
    md
}
