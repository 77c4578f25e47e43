//! RESULTS.md is generated from the committed cpu report and must match it: edit neither by hand,
//! run `cargo xtask report --preset cpu --out results/reference/cpu`.

use xtask::results::{parse_summary, render, verdict, CPU_REPORT, RESULTS_MD};

#[test]
fn results_md_is_what_the_committed_report_generates() {
    let repo = xtask::repo_root();
    let report = std::fs::read_to_string(repo.join(CPU_REPORT)).unwrap();
    let committed = std::fs::read_to_string(repo.join(RESULTS_MD)).unwrap();
    let fresh = render(&report).unwrap();
    assert!(
        fresh == committed,
        "{RESULTS_MD} differs from what {CPU_REPORT} generates: run `cargo xtask report --preset cpu --out results/reference/cpu`"
    );
}

#[test]
fn the_summary_tables_are_read_by_column_name() {
    let report = std::fs::read_to_string(xtask::repo_root().join(CPU_REPORT)).unwrap();
    let s = parse_summary(&report).unwrap();
    let half = s.tables.iter().find(|t| t.fraction == "0.50" && t.budget == "matched").unwrap();
    let full = &half.rows["full data"];
    assert!(full.cells["passes"].starts_with("100.0%"));
    let ucb = &half.rows["ucb"];
    assert!(ucb.cells.contains_key("Holm") && ucb.cells.contains_key("Holm (full)"), "{:?}", ucb.cells.keys());
}

#[test]
fn verdicts_follow_the_holm_cell_and_the_unadjusted_interval() {
    assert_eq!(
        verdict("-0.60 [-0.64, -0.56]", "**lower** p=<0.001 [-0.72, -0.48]"),
        "**measured**: -0.60 [-0.64, -0.56], Holm p < 0.001"
    );
    assert_eq!(
        verdict("+0.28 [+0.18, +0.39]", "n.s. p=0.063 [-0.02, +0.59]"),
        "exploratory: +0.28 [+0.18, +0.39], Holm p 0.063"
    );
    assert_eq!(
        verdict("-0.10 [-0.39, +0.18]", "n.s. p=1.000 [-0.94, +0.73]"),
        "not shown: -0.10 [-0.39, +0.18], Holm p 1.000"
    );
    assert_eq!(verdict("+0.13 (n=1)", ""), "+0.13 (one seed: no interval)");
    assert_eq!(verdict("", ""), "n/a");
}
