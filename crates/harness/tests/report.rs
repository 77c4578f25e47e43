//! The report against its inputs: summaries with known values in, every number of the REPORT.md
//! tables checked against a hand computation.

use std::path::Path;

use dynaprune_harness::report::{self, Paired, ReportArgs};
use dynaprune_harness::run::accounting::Summary;

#[allow(clippy::too_many_arguments)]
fn summary(
    method: &str,
    pf: f64,
    seed: u64,
    acc: f64,
    train_s: f64,
    cpu_s: f64,
    samples: usize,
    static_s: f64,
) -> Summary {
    let policy = method.split(['+', '-']).next().unwrap().to_string();
    Summary {
        run_id: format!("{method}-{seed}"),
        dataset: "fashion-mnist".into(),
        model: "resnet8".into(),
        policy: if method == "el2n" { "el2n".into() } else { policy },
        method: method.into(),
        prune_fraction: pf,
        budget: if method == "full" { "none".into() } else { "matched".into() },
        pruned_epoch_fraction: None,
        seed,
        epochs: 10,
        final_test_acc: acc,
        final_test_loss: 0.3,
        best_test_acc: acc,
        samples,
        full_data_samples: 1000,
        train_s,
        static_scoring_s: static_s,
        // Scoring's CPU time: 1.5x its wall time (two threads, not always both busy).
        static_scoring_cpu_s: Some(1.5 * static_s),
        static_scoring: None,
        total_s: train_s + static_s,
        rescore_s: 0.0,
        rescore_samples: 0,
        cpu_s,
        mean_overlap: None,
        peak_rss_mib: 100.0,
        wall_s: train_s + 5.0,
        select_s: 0.01,
        data_s: 0.01,
        compute_s: train_s - 0.03,
        observe_s: 0.01,
        eval_s: 5.0,
        checkpoint_s: 0.1,
        pruned_epochs: 9,
        selection_histogram: vec![],
        device: "Cpu".into(),
        threads: 2,
    }
}

fn write(dir: &Path, s: &Summary) {
    let d = dir.join(&s.run_id);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("summary.json"), serde_json::to_vec(s).unwrap()).unwrap();
}

fn row<'a>(md: &'a str, start: &str) -> &'a str {
    md.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no row starting with `{start}` in:\n{md}"))
}

#[test]
fn report_numbers_match_a_hand_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for s in [
        summary("full", 0.0, 0, 0.90, 100.0, 180.0, 1000, 0.0),
        summary("full", 0.0, 1, 0.92, 110.0, 200.0, 1000, 0.0),
        summary("random", 0.5, 0, 0.88, 50.0, 90.0, 500, 0.0),
        summary("random", 0.5, 1, 0.89, 60.0, 100.0, 500, 0.0),
        summary("ucb", 0.5, 0, 0.91, 45.0, 95.0, 550, 0.0),
        summary("ucb", 0.5, 1, 0.90, 60.0, 105.0, 550, 0.0),
        summary("el2n", 0.5, 0, 0.85, 50.0, 90.0, 500, 30.0),
    ] {
        write(&runs, &s);
    }
    let out = tmp.path().join("out");
    let rows = report::collect(&runs).unwrap();
    assert_eq!(rows.len(), 7);
    report::write(
        &rows,
        &ReportArgs { runs: runs.clone(), out: out.clone(), title: "t".into(), note: None, reference: None },
    )
    .unwrap();
    let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    // The cell table (the summary above it has rows of the same names).
    let table = &md[md.find("\n## fashion-mnist / resnet8").expect("the cell table")..];

    // Columns: method | budget | prune | acc | samples | bound | wall | CPU | train | ms/pass | total |
    // total speed-up (wall) | total speed-up (CPU).
    // full: mean(0.90, 0.92) = 91.00, sample std 1.41; its own baseline: 1.00x everywhere;
    // ms/pass = mean(100 s, 110 s) / 1000 passes = 105 ms.
    assert_eq!(
        row(table, "| full |"),
        "| full | none | 0.00 | 91.00 ± 1.41 (n=2) | 100.0% | 1.00x | 1.00x | 1.00x | 105.0 | 105.000 | 105.0 | 1.00x | 1.00x |"
    );
    // random, paired by seed: wall (100/50 + 110/60) / 2 = 1.92x; CPU (180/90 + 200/100) / 2 = 2.00x;
    // bound 1000 / 500 = 2.00x, not exceeded by more than 5%.
    assert_eq!(
        row(table, "| random |"),
        "| random | matched | 0.50 | 88.50 ± 0.71 (n=2) | 50.0% | 2.00x | 1.92x | 2.00x | 55.0 | 110.000 | 55.0 | 1.92x | 2.00x |"
    );
    // ucb: wall (100/45 + 110/60) / 2 = 2.03x, and seed 0's 2.22x exceeds its bound 1000/550 =
    // 1.82x by more than 5% (1.91x): flagged once, in the wall column and in the total column
    // (no static scoring: the same ratio). CPU (180/95 + 200/105) / 2 = 1.90x, within, in the
    // CPU column and the total CPU one.
    assert_eq!(
        row(table, "| ucb |"),
        "| ucb | matched | 0.50 | 90.50 ± 0.71 (n=2) | 55.0% | 1.82x | 2.03x ⚠1 | 1.90x | 52.5 | 95.455 | 52.5 | 2.03x ⚠1 | 1.90x |"
    );
    // el2n, one seed: no spread shown; its 30 s of scoring count in the total: 100 / 80 = 1.25x;
    // in CPU time its 45 s: 180 / (90 + 45) = 1.33x.
    assert_eq!(
        row(table, "| el2n |"),
        "| el2n | matched | 0.50 | 85.00 (n=1) | 50.0% | 2.00x | 2.00x | 2.00x | 50.0 | 100.000 | 80.0 | 1.25x | 1.33x |"
    );
    assert!(md.contains("; 2 such measurements here"), "the noise note counts the flagged measurements: {md}");

    // Paired differences: ucb - random per seed = +3, +1 points: mean +2.00, sd 1.414, n = 2,
    // t(0.975, 1) = 12.706: +-12.706 * 1.414 / sqrt(2) = +-12.71 -> [-10.71, +14.71]. Its t is
    // 2 / 1 = 2 on 1 degree of freedom: p = 0.295, alone in its Holm family (el2n has one seed):
    // adjusted as it is. Against full data (se 1.5, t = 0.33, p = 0.795) its family also holds
    // random (p > 0.025, so no rejection): both intervals at level 1 - 0.05/2, t = 25.45:
    // -0.50 +- 38.18.
    assert_eq!(
        row(&md, "| fashion-mnist | ucb | matched | 0.50 |"),
        "| fashion-mnist | ucb | matched | 0.50 | +2.00 [-10.71, +14.71] (n=2) | n.s. p=0.295 [-10.71, +14.71] | -0.50 [-19.56, +18.56] (n=2) | n.s. p=0.795 [-38.68, +37.68] |"
    );
    assert_eq!(
        row(&md, "| fashion-mnist | el2n | matched | 0.50 |"),
        "| fashion-mnist | el2n | matched | 0.50 | -3.00 (n=1) |  | -5.00 (n=1) |  |"
    );
    // Time per sample pass, per run (ucb seed 0: 45 s / 550 passes; CPU 95 s / 550).
    assert!(md.contains("| ucb-0 | 81.818 | 172.727 | 100 |"), "{md}");
    // Provenance: which binary ran which runs (no config.json here, so the commit is unknown).
    assert!(md.contains("- commits (runs by budget):\n  - `unknown`: 7 (5 matched, 2 none)\n"), "{md}");
    // cells.csv holds the same aggregates.
    let csv = std::fs::read_to_string(out.join("cells.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("speedup_cpu") && csv.lines().count() == 5, "{csv}");
}

#[test]
fn the_summary_gathers_one_fraction_with_measured_differences_in_bold() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (seed, full, random, ucb) in [(0, 0.90, 0.88, 0.891), (1, 0.91, 0.89, 0.899), (2, 0.92, 0.90, 0.912)] {
        write(&runs, &summary("full", 0.0, seed, full, 100.0, 200.0, 1000, 0.0));
        write(&runs, &summary("random", 0.5, seed, random, 50.0, 100.0, 500, 0.0));
        // 1,000 training samples over 9 pruned epochs: 100 never chosen, 800 sometimes, 100 always.
        let mut u = summary("ucb", 0.5, seed, ucb, 55.0, 110.0, 550, 0.0);
        u.selection_histogram = vec![100, 0, 0, 0, 800, 0, 0, 0, 0, 100];
        u.mean_overlap = Some(0.5);
        // And 250 forward-only passes (re-scoring), a quarter of the full-data passes.
        u.rescore_samples = 250;
        write(&runs, &u);
        // EL2N one point below random on every seed; its scoring (30 s) recorded wall time only,
        // as score files did before CPU time was recorded.
        let mut e = summary("el2n", 0.5, seed, random - 0.01, 50.0, 100.0, 500, 30.0);
        e.static_scoring_cpu_s = None;
        write(&runs, &e);
    }
    let out = tmp.path().join("out");
    let rows = report::collect(&runs).unwrap();
    report::write(&rows, &ReportArgs { runs, out: out.clone(), title: "t".into(), note: None, reference: None })
        .unwrap();
    let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    let summary = &md[md.find("## Summary").expect("a summary section")..md.find("\n## fashion-mnist").unwrap()];
    assert!(summary.contains("### fashion-mnist / resnet8: prune fraction 0.50, budget matched\n"), "{summary}");
    assert_eq!(
        row(summary, "| full data |"),
        "| full data | 91.00 ± 1.00 (n=3) | 100.0% | 0.0% | 1.00x | 1.00x | 1.00x | | | | |"
    );
    // random - full = -2 points on every seed: an interval of width ~0 that excludes 0.
    assert_eq!(
        row(summary, "| random |"),
        "| random | 89.00 ± 1.00 (n=3) | 50.0% | 0.0% | 2.00x | 2.00x | 2.00x |  |  | -2.00 [-2.00, -2.00] | **lower** p=<0.001 [-2.00, -2.00] |"
    );
    // ucb - random = +1.1, +0.9, +1.2: mean +1.067, sd 0.153, t(0.975, 2) = 4.303: +-0.379 ->
    // [+0.69, +1.45]; ucb - full = -0.9, -1.1, -0.8 -> [-1.31, -0.55]. CPU 200/110, total 100/55.
    // Holm: against random, el2n (p = 0, no spread) and ucb (t = 12.09 on 2 df, p = 0.0068) are
    // both rejected (0 <= 0.05/2, 0.0068 <= 0.05/1); against full data random, el2n (p = 0) and
    // ucb (t = 10.58, p = 0.0088) too. The last-ranked intervals are at level 95%.
    // The sometimes-samples rows name their budget, a cell's seeds together and in order.
    let sometimes: Vec<&str> =
        md.lines().filter(|l| l.starts_with("| fashion-mnist | ucb | matched | 0.50 | ")).collect();
    assert_eq!(
        sometimes[..3],
        [0, 1, 2].map(|seed| format!(
            "| fashion-mnist | ucb | matched | 0.50 | {seed} | 9 | 10.0 | 80.0 | 10.0 | 0.500 | 250 |"
        ))
    );
    // EL2N: its total falls back to wall time, 100 / (50 + 30) = 1.25x, and says so; the cell
    // table's CPU total is n/a.
    assert_eq!(
        row(summary, "| el2n |"),
        "| el2n | 88.00 ± 1.00 (n=3) | 50.0% | 0.0% | 2.00x | 2.00x | 1.25x (wall) | -1.00 [-1.00, -1.00] | **lower** p=<0.001 [-1.00, -1.00] | -3.00 [-3.00, -3.00] | **lower** p=<0.001 [-3.00, -3.00] |"
    );
    assert!(row(&md, "| el2n | matched |").ends_with("| 80.0 | 1.25x | n/a |"), "{md}");
    assert_eq!(
        row(summary, "| ucb |"),
        "| ucb | 90.07 ± 1.06 (n=3) | 55.0% | 25.0% | 1.82x | 1.82x | 1.82x | +1.07 [+0.69, +1.45] | **higher** p=0.007 [+0.69, +1.45] | -0.93 [-1.31, -0.55] | **lower** p=0.009 [-1.31, -0.55] |"
    );
}

#[test]
fn paired_intervals_and_verdicts() {
    // Three seeds, all about -3 points: t(0.975, 2) = 4.303, sd 0.1 points -> half-width
    // 4.303 * 0.001 / sqrt(3) = 0.00248: the interval excludes 0.
    let p = Paired::from_diffs(&[-0.03, -0.031, -0.029]);
    assert_eq!(p.n, 3);
    assert!((p.mean + 0.03).abs() < 1e-12);
    assert!((p.hi - (-0.03 + 4.303 * 0.001 / 3f64.sqrt())).abs() < 1e-9, "{p:?}");
    assert_eq!(p.verdict(), "lower");
    assert_eq!(Paired::from_diffs(&[0.03, 0.031, 0.029]).verdict(), "higher");
    assert_eq!(Paired::from_diffs(&[0.03, -0.02, 0.01]).verdict(), "no measurable difference");
    assert_eq!(Paired::from_diffs(&[0.05]).verdict(), "n < 2: no interval");
    assert_eq!(report::t975(1), 12.706);
    assert_eq!(report::t975(100), 1.96);
    assert!(report::is_noise(2.2, 2.0) && !report::is_noise(2.09, 2.0) && !report::is_noise(f64::NAN, 2.0));
}

#[test]
fn an_unknown_budget_is_rejected_with_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = summary("ucb", 0.5, 0, 0.9, 10.0, 20.0, 500, 0.0);
    s.budget = "generous".into();
    write(tmp.path(), &s);
    let e = format!("{:#}", report::collect(tmp.path()).unwrap_err());
    assert!(e.contains("summary.json") && e.contains("generous") && e.contains("matched"), "{e}");
}

#[test]
fn your_runs_next_to_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (yours, reference) = (tmp.path().join("yours"), tmp.path().join("reference"));
    // Same cell and seed: one identical, one that moved by half a point, one with no reference.
    write(&reference, &summary("full", 0.0, 0, 0.90, 100.0, 180.0, 1000, 0.0));
    write(&reference, &summary("ucb", 0.5, 0, 0.91, 50.0, 90.0, 550, 0.0));
    write(&yours, &summary("full", 0.0, 0, 0.90, 120.0, 200.0, 1000, 0.0));
    write(&yours, &summary("ucb", 0.5, 0, 0.905, 40.0, 80.0, 550, 0.0));
    write(&yours, &summary("random", 0.5, 0, 0.88, 50.0, 90.0, 500, 0.0));
    let rows = report::collect(&yours).unwrap();
    let out = tmp.path().join("out");
    let args = ReportArgs { runs: yours, out: out.clone(), title: "t".into(), note: None, reference: Some(reference) };
    report::write(&rows, &args).unwrap();
    let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert_eq!(row(&md, "| full-0 |"), "| full-0 | 90.00 | 90.00 | +0.00 | identical | 1.20x |");
    // No config.json here: neither run recorded its kernel path, so the difference is unexplained.
    assert_eq!(
        row(&md, "| ucb-0 |"),
        "| ucb-0 | 90.50 | 91.00 | -0.50 | differs; kernel path not recorded (yours: unknown; reference: unknown) | 0.80x |"
    );
    assert_eq!(row(&md, "| random-0 |"), "| random-0 | 88.00 | n/a | n/a | no reference run | n/a |");
    assert!(md.contains("1 of 2 matched runs are bit-identical to the reference."), "{md}");
    assert!(!md.contains("differs on the same kernels"), "{md}");

    // With the paths recorded: another CPU kind explains a difference; the same path does not.
    let reference_rows = report::collect(&tmp.path().join("reference")).unwrap();
    let with = |rows: &[report::RunRow], k: &str| -> Vec<report::RunRow> {
        rows.iter()
            .cloned()
            .map(|mut r| {
                r.kernels = k.into();
                r
            })
            .collect()
    };
    let (v4, v3) = ("fast f32 (gemm x86-v4, elementwise avx2+fma)", "fast f32 (gemm x86-v3, elementwise avx2+fma)");
    let md = report::reference_section(&with(&rows, v3), &with(&reference_rows, v4), tmp.path());
    assert_eq!(
        row(&md, "| ucb-0 |"),
        format!(
            "| ucb-0 | 90.50 | 91.00 | -0.50 | differs, different CPU kernels (yours: {v3}; reference: {v4}) | 0.80x |"
        )
    );
    assert_eq!(row(&md, "| full-0 |"), "| full-0 | 90.00 | 90.00 | +0.00 | identical | 1.20x |");
    let md = report::reference_section(&with(&rows, v4), &with(&reference_rows, v4), tmp.path());
    assert_eq!(
        row(&md, "| ucb-0 |"),
        format!("| ucb-0 | 90.50 | 91.00 | -0.50 | **differs on the same kernels ({v4}): a defect** | 0.80x |")
    );
    assert!(md.contains("**1 run(s) differ from the reference on the same kernel path: a defect"), "{md}");
}

#[test]
fn a_partial_or_corrupt_reference_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let yours = tmp.path().join("yours");
    write(&yours, &summary("full", 0.0, 0, 0.9, 10.0, 20.0, 1000, 0.0));
    let rows = report::collect(&yours).unwrap();
    let reference = tmp.path().join("reference");
    std::fs::create_dir_all(reference.join("full-0")).unwrap();
    std::fs::write(reference.join("full-0/summary.json"), b"{\"run_id\": \"full-0\", \"truncated").unwrap();
    let args = |r: &Path| ReportArgs {
        runs: yours.clone(),
        out: tmp.path().join("out"),
        title: "t".into(),
        note: None,
        reference: Some(r.to_path_buf()),
    };
    let e = format!("{:#}", report::write(&rows, &args(&reference)).unwrap_err());
    assert!(e.contains("full-0/summary.json") && e.contains("not a run summary"), "{e}");
    let e = format!("{:#}", report::write(&rows, &args(&tmp.path().join("missing"))).unwrap_err());
    assert!(e.contains("missing"), "{e}");
}
