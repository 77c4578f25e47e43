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
    assert_eq!(all.len(), 3 * (1 + 9 * 3), "3 seeds x (full + 9 methods x 3 fractions)");
    for n in 1..=7 {
        let mut seen = Vec::new();
        for i in 1..=n {
            seen.extend(shard(all.clone(), i, n));
        }
        assert_eq!(seen.len(), all.len());
        let dirs: BTreeSet<PathBuf> = seen.iter().map(|c| c.dir(std::path::Path::new("r"))).collect();
        assert_eq!(dirs.len(), all.len(), "no cell in two shards, none missing (n = {n})");
    }
    assert!(parse_shard("0/3").is_err() && parse_shard("4/3").is_err() && parse_shard("x").is_err());
    assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
    assert!(preset("huge").is_err());
}

fn binary() -> PathBuf {
    let repo = xtask::repo_root();
    let prebuilt = repo.join("target/release/dynaprune");
    if std::env::var_os("DYNAPRUNE_BIN").is_none() && prebuilt.exists() {
        return prebuilt;
    }
    xtask::build_binary(&repo).unwrap()
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
    };
    reproduce::reproduce(&p, &o).unwrap();
    let runs_csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let mut r = csv::Reader::from_reader(runs_csv.as_bytes());
    let headers = r.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 2, "full + ucb");
    let acc = headers.iter().position(|h| h == "final_test_acc").unwrap();
    for row in &rows {
        let a: f64 = row[acc].parse().unwrap();
        assert!((0.0..=1.0).contains(&a));
    }
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(
        report.contains("| ucb | 0.50 |") && report.contains("| full | 0.00 |") && report.contains("Provenance"),
        "{report}"
    );
    let svgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .collect();
    assert_eq!(svgs.len(), 2);
    for s in svgs {
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(text.starts_with("<svg") && text.contains("</svg>"));
    }
    // Run again: every cell is skipped, the finished summaries are untouched.
    let summary = out.join("runs/synthetic/ucb-pf0.50-s0/summary.json");
    let before = std::fs::metadata(&summary).unwrap().modified().unwrap();
    reproduce::reproduce(&p, &o).unwrap();
    assert_eq!(std::fs::metadata(&summary).unwrap().modified().unwrap(), before);
}
