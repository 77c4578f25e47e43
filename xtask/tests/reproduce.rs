//! The grid: shards partition it exactly; the smoke preset runs end to end (real binary, tiny
//! generated data) and produces a parsable CSV, REPORT.md and SVGs; a second run skips finished
//! cells.

use std::collections::BTreeSet;
use std::path::PathBuf;

use xtask::reproduce::{self, cells, parse_shard, preset, shard};

#[test]
fn shards_partition_the_grid_exactly() {
    let p = preset("cpu").unwrap();
    let all = cells(&p);
    assert_eq!(all.len(), 3 * (1 + 16 * 3), "3 seeds x (full + 16 pruning methods x 3 fractions)");
    for n in 1..=7 {
        let mut seen = Vec::new();
        for i in 1..=n {
            seen.extend(shard(all.clone(), i, n));
        }
        assert_eq!(seen.len(), all.len());
        let dirs: BTreeSet<PathBuf> = seen.iter().map(|c| c.dir(std::path::Path::new("r"))).collect();
        assert_eq!(dirs.len(), all.len(), "no cell in two shards, none missing (n = {n})");
    }
    for bad in ["0/3", "4/3", "a/b", "1/0", "x", "1/", "/3", "-1/3"] {
        let e = format!("{:#}", parse_shard(bad).unwrap_err());
        assert!(e.contains(bad) || e.contains("--shard"), "{bad}: {e}");
        assert!(
            e.contains("i/n") || e.contains("1 <= i <= n") || e.contains("--shard: "),
            "{bad}: the expected form: {e}"
        );
    }
    assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
    assert!(preset("huge").is_err());
}

/// The `dynaprune` binary, built now so that it matches the sources under test (`cargo build`
/// is a no-op when it is current); `$DYNAPRUNE_BIN` overrides.
fn binary() -> PathBuf {
    xtask::build_binary(&xtask::repo_root()).unwrap()
}

#[test]
fn smoke_preset_end_to_end_and_resume_skips_finished_cells() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smoke");
    let p = preset("smoke").unwrap();
    let o = reproduce::Options {
        binary: binary(),
        out: out.clone(),
        shard: (1, 1),
        threads: Some(2),
        dry_run: false,
        command: "test".into(),
        reference: None,
    };
    reproduce::reproduce(&p, &o).unwrap();
    let runs_csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let mut r = csv::Reader::from_reader(runs_csv.as_bytes());
    let headers = r.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 2, "full + ucb");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    // Each run's row in REPORT.md carries the numbers of its summary: accuracy (n=1, no fake
    // spread), the exact fraction of sample passes and the sample-pass bound.
    for row in &rows {
        let method = &row[col("method")];
        let acc: f64 = row[col("final_test_acc")].parse().unwrap();
        let samples: f64 = row[col("samples")].parse().unwrap();
        let full: f64 = row[col("full_data_samples")].parse().unwrap();
        let budget = if method == "full" { "none" } else { "matched" };
        let want = format!(
            "| {method} | {budget} | {} | {:.2} (n=1) | {:.1}% | {:.2}x |",
            if method == "full" { "0.00" } else { "0.50" },
            100.0 * acc,
            100.0 * samples / full,
            full / samples
        );
        assert!(report.contains(&want), "REPORT.md lacks `{want}`:\n{report}");
    }
    // The matched budget: UCB spends what uniform random spends at 50% over 3 epochs,
    // 0.5 * 256 * 3 = 384 passes (a full warm-up epoch of 256, then 2 epochs of 64).
    let ucb = rows.iter().find(|r| &r[col("method")] == "ucb").unwrap();
    assert_eq!(&ucb[col("samples")], "384");
    assert_eq!(&ucb[col("budget")], "matched");
    assert!(report.contains("## Paired differences") && report.contains("## Time per sample pass"));
    let svgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .collect();
    assert_eq!(svgs.len(), 3, "accuracy vs prune fraction, accuracy vs time, overlap per epoch");
    for s in svgs {
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(text.starts_with("<svg") && text.contains("</svg>"));
    }
    // Another user's run of the same grid, next to this one as the reference: on CPU the same
    // code and seed reproduce every cell bit for bit, and the report says so.
    let out2 = dir.path().join("yours");
    let o2 = reproduce::Options { out: out2.clone(), reference: Some(out.join("runs")), ..o.clone() };
    reproduce::reproduce(&p, &o2).unwrap();
    let report2 = std::fs::read_to_string(out2.join("REPORT.md")).unwrap();
    assert!(report2.contains("## Your runs next to the reference"), "{report2}");
    assert!(report2.contains("2 of 2 matched runs are bit-identical to the reference."), "{report2}");
    // --reuse-reference: the reference's finished runs are copied in, nothing is trained again.
    let out3 = dir.path().join("reused");
    assert_eq!(reproduce::reuse_reference(&out, &out3).unwrap(), 2);
    let before3 =
        std::fs::metadata(out3.join("runs/synthetic/matched/ucb-pf0.50-s0/summary.json")).unwrap().modified().unwrap();
    reproduce::reproduce(&p, &reproduce::Options { out: out3.clone(), ..o.clone() }).unwrap();
    assert_eq!(
        std::fs::metadata(out3.join("runs/synthetic/matched/ucb-pf0.50-s0/summary.json")).unwrap().modified().unwrap(),
        before3
    );
    // Run again: every cell is skipped, the finished summaries are untouched.
    let summary = out.join("runs/synthetic/matched/ucb-pf0.50-s0/summary.json");
    let before = std::fs::metadata(&summary).unwrap().modified().unwrap();
    reproduce::reproduce(&p, &o).unwrap();
    assert_eq!(std::fs::metadata(&summary).unwrap().modified().unwrap(), before);
}
