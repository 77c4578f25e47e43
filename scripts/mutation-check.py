#!/usr/bin/env python3
"""Tests that can fail: for each test, a deliberate one-line break of the code it guards, the
test run against it, and the failure it reports. Every mutation is reverted, whatever happens.

    python3 scripts/mutation-check.py            # all (about 30 minutes on 2 cores)
    python3 scripts/mutation-check.py rs2 kill   # only those whose name contains a word

A mutation the test does NOT catch is reported as SURVIVED and makes the script exit 1.
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# (name, file, original line fragment, mutated fragment, cargo test arguments)
MUTATIONS = [
    ("example: annealing one epoch short", "crates/pruning/src/schedule.rs",
     "} else if epoch + self.anneal >= self.epochs {", "} else if epoch + self.anneal > self.epochs {",
     ["-p", "dynaprune", "--test", "example_runs"]),
    ("select: -0.0 ranked equal to +0.0", "crates/pruning/src/select.rs",
     "if b & 0x8000_0000 != 0 {", "if b & 0x8000_0000 != 0 && x != 0.0 {",
     ["-p", "dynaprune", "--lib", "ordered_bits_is_monotone"]),
    ("properties: InfoBatch survivors under-weighted", "crates/pruning/src/policy/infobatch.rs",
     "let w = (1.0 / (1.0 - r)) as f32;", "let w = (1.0 / (1.0 - 0.5 * r)) as f32;",
     ["-p", "dynaprune", "--test", "properties", "plans_are_valid"]),
    ("policies: saving reported as the kept fraction", "crates/pruning/src/pruner.rs",
     "saving: 1.0 - kept as f64 / self.n as f64,", "saving: kept as f64 / self.n as f64,",
     ["-p", "dynaprune", "--test", "policies", "schedule_phases_and_accounting"]),
    ("policies: selection counts add pruned epochs", "crates/pruning/src/pruner.rs",
     "self.pruned_counts.iter().map(|c| c + self.full_epochs).collect()",
     "self.pruned_counts.iter().map(|c| c + self.pruned_epochs).collect()",
     ["-p", "dynaprune", "--test", "policies", "schedule_phases_and_accounting"]),
    ("staleness: stale statistics not aged", "crates/pruning/src/policy/staleness.rs",
     "if a == 0 {", "if a < usize::MAX {",
     ["-p", "dynaprune", "--test", "dynamics", "stale_sample_is_eventually_selected"]),
    ("rs2: the straddling tail is not moved last", "crates/pruning/src/policy/rs2.rs",
     "let tail = (p * n) % k;", "let tail = 0 * ((p * n) % k);",
     ["-p", "dynaprune", "--test", "dynamics", "rs2_covers"]),
    ("kakurenbo: confidence threshold ignored", "crates/pruning/src/policy/kakurenbo.rs",
     "recs[i].confidence >= tau", "recs[i].confidence >= 0.0",
     ["-p", "dynaprune", "--test", "dynamics", "kakurenbo_matches_the_reference_rule_by_hand"]),
    ("pruner: re-scoring due on the wrong selections", "crates/pruning/src/pruner.rs",
     "self.selections_before(epoch) % r != 0", "self.selections_before(epoch) % r == 0",
     ["-p", "dynaprune", "--test", "dynamics", "rescore_requests_follow_the_interval"]),
    ("pruner: never-selected counts samples selected once", "crates/pruning/src/pruner.rs",
     "self.pruned_counts.iter().filter(|&&c| c == 0).count()", "self.pruned_counts.iter().filter(|&&c| c <= 1).count()",
     ["-p", "dynaprune", "--test", "dynamics", "plan_stats_track"]),
    ("state: the learning-rate factor is not saved", "crates/pruning/src/pruner.rs",
     "selection_lr_factor: self.selection.as_ref().and_then(|s| s.lr_factor),", "selection_lr_factor: None,",
     ["-p", "dynaprune", "--test", "dynamics", "lr_factor_survives"]),
    ("state: version 1 records read as version 2", "crates/pruning/src/state.rs",
     "let record_bytes = if version >= 2 { 25 } else { 20 };", "let record_bytes = 25;",
     ["-p", "dynaprune", "--lib", "version_1_files_still_read"]),
    ("schedule: budget ignores annealing epochs", "crates/pruning/src/schedule.rs",
     "let full = (self.warmup + self.anneal) as f64;", "let full = self.warmup as f64;",
     ["-p", "dynaprune", "--test", "dynamics", "budget_matched"]),
    ("data: augmentation ignores the seed", "crates/data/src/augment.rs",
     "let h = dynaprune::rng::mix3(seed, epoch as u64, index as u64);", "let h = dynaprune::rng::mix3(0 * seed, epoch as u64, index as u64);",
     ["-p", "dynaprune-data", "--test", "batches", "augmentation_is_a_pure_function"]),
    ("model: weights dropped from the loss", "crates/model/src/loss.rs",
     "Some(w) => (losses * w.to_dtype(losses.dtype())?)?.mean_all()?,", "Some(w) => { let _ = w; losses.mean_all()? }",
     ["-p", "dynaprune-model", "--test", "reference"]),
    ("model: BatchNorm records a 1% larger variance", "crates/model/src/ops/bn.rs",
     "*self.stats.lock().expect(\"batch-norm statistics lock\") = Some((mean, var));",
     "*self.stats.lock().expect(\"batch-norm statistics lock\") = Some((mean, var.iter().map(|v| v * 1.01).collect()));",
     ["-p", "dynaprune-model", "--test", "ops"]),
    ("model: a missing checkpoint is not named", "crates/model/src/checkpoint.rs",
     "std::fs::read(path).map_err(|e| ck(path, format!(\"cannot read: {e}\")))?;",
     "std::fs::read(path).map_err(|e| ck(Path::new(\"checkpoint\"), format!(\"cannot read: {e}\")))?;",
     ["-p", "dynaprune-model", "--test", "network"]),
    ("bf16: rounding truncates instead of nearest-even", "crates/model/src/ops/gemm_bf16.rs",
     "let r = b.wrapping_add(0x7fff + ((b >> 16) & 1));", "let r = b;",
     ["-p", "dynaprune-model", "--lib", "gemm_bf16"]),
    ("bf16: SIMD packing rounds down", "crates/model/src/ops/gemm_bf16.rs",
     "let r = _mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));",
     "let r = _mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0)));",
     ["-p", "dynaprune-model", "--lib", "gemm_bf16"]),
    ("bf16: a pair straddling two images reads the wrong image", "crates/model/src/ops/gemm_bf16.rs",
     "line[q] = word(buf[at(n)], buf[at(n + 1)]);", "line[q] = word(buf[at(n)], buf[at(n)]);",
     ["-p", "dynaprune-model", "--lib", "implicit_columns"]),
    ("bf16: odd depth's last value dropped", "crates/model/src/ops/gemm_bf16.rs",
     "line[pairs - 1] = word(src[base + (kc - 1) * v.cs], 0.0);", "line[pairs - 1] = word(0.0, 0.0);",
     ["-p", "dynaprune-model", "--lib", "gemm_bf16"]),
    ("bf16: products not run in bf16", "crates/model/src/ops/gemm.rs",
     "if precision == Precision::Bf16 && runs_in_bf16(", "if false && runs_in_bf16(",
     ["-p", "dynaprune-model", "--test", "ops", "bf16"]),
    ("bf16: --precision not passed to the model", "crates/harness/src/run/engine.rs",
     ".with_precision(model.precision)", ".with_precision(dynaprune_model::Precision::F32)",
     ["-p", "dynaprune-harness", "--test", "runs", "bf16_precision"]),
    ("harness: half the compute time recorded", "crates/harness/src/run/engine.rs",
     "t.compute_s += (t2 - t1).as_secs_f64();", "t.compute_s += 0.5 * (t2 - t1).as_secs_f64();",
     ["-p", "dynaprune-harness", "--test", "runs", "every_policy"]),
    ("harness: summary select_s sums the wrong column", "crates/harness/src/run/accounting.rs",
     "select_s: sum(|r| r.select_s),", "select_s: sum(|r| r.data_s),",
     ["-p", "dynaprune-harness", "--test", "runs", "every_policy"]),
    ("harness: checkpoint.old not recovered", "crates/harness/src/run/checkpoint.rs",
     "if !ck.exists() && old.exists() {", "if false && !ck.exists() && old.exists() {",
     ["-p", "dynaprune-harness", "--test", "runs", "damaged_run_directories"]),
    ("harness: resume drops the optimizer state", "crates/harness/src/run/checkpoint.rs",
     "checkpoint::load(&ck_dir.join(\"model.safetensors\"), model, Some(opt))?;",
     "checkpoint::load(&ck_dir.join(\"model.safetensors\"), model, None)?;",
     ["-p", "dynaprune-harness", "--test", "kill"]),
    ("harness: non-finite loss not detected", "crates/harness/src/run/engine.rs",
     "if !lv.is_finite() {", "if false && !lv.is_finite() {",
     ["-p", "dynaprune-harness", "--test", "runs", "divergence"]),
    ("harness: InfoBatch never anneals", "crates/harness/src/config/flags.rs",
     "self.anneal_epochs = Some(self.policy.info().anneal_epochs(self.epochs));",
     "self.anneal_epochs = Some(0 * self.policy.info().anneal_epochs(self.epochs));",
     ["-p", "dynaprune-harness", "--test", "runs", "infobatch_weights"]),
    ("harness: re-scored samples not recorded", "crates/harness/src/run/mod.rs",
     "Ok((stale.len(), t.elapsed().as_secs_f64()))", "Ok((0 * stale.len(), t.elapsed().as_secs_f64()))",
     ["-p", "dynaprune-harness", "--test", "runs", "rescoring_is_charged"]),
    ("harness: never-selected column left empty", "crates/harness/src/run/mod.rs",
     "never_selected: stats.never_selected,", "never_selected: stats.never_selected.filter(|_| false),",
     ["-p", "dynaprune-harness", "--test", "runs", "dynamics_columns"]),
    ("harness: matched budget ignores the warm-up", "crates/harness/src/config/flags.rs",
     "                .warmup(w)\n", "                .warmup(0 * w)\n",
     ["-p", "dynaprune-harness", "--test", "runs", "matched_budgets"]),
    ("report: speed-ups not paired by seed", "crates/harness/src/report/mod.rs",
     "&& b.model == r.model && b.seed == r.seed)", "&& b.model == r.model)",
     ["-p", "dynaprune-harness", "--test", "report"]),
    ("scorers: learning counted as forgetting", "crates/harness/src/scoring/mod.rs",
     "if self.prev[i] == Some(true) && !now {", "if self.prev[i].is_some() && self.prev[i] != Some(now) {",
     ["-p", "dynaprune-harness", "--test", "scorers", "forgetting"]),
    ("scorers: GraNd last layer without the bias term", "crates/harness/src/scoring/mod.rs",
     "let hn = (h.sqr()?.sum(1)? + 1.0)?.sqrt()?;", "let hn = h.sqr()?.sum(1)?.sqrt()?;",
     ["-p", "dynaprune-harness", "--test", "scorers", "grand_last_layer_matches"]),
    ("svg: 3 accepted as a nice step", "crates/harness/src/report/svg.rs",
     "let steps = [10.0, 5.0, 2.0, 1.0, 0.5, 0.2].map(|m| m * mag);", "let steps = [10.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.2].map(|m| m * mag);",
     ["-p", "dynaprune-harness", "--lib", "ticks_are_nice"]),
    ("report: samples column shows the bound", "crates/harness/src/report/mod.rs",
     "            100.0 * c.sample_fraction,\n", "            100.0 / c.bound.max(1e-9) * 1.01,\n",
     ["-p", "xtask", "--test", "reproduce", "smoke"]),
    ("fetch: downloads not verified", "xtask/src/fetch.rs",
     "if sum != md5 {", "if false && sum != md5 {",
     ["-p", "xtask", "--test", "fetch", "fashion_mnist_mirrors"]),
]


def run(name, path, old, new, args):
    f = ROOT / path
    text = f.read_text()
    if text.count(old) != 1:
        return "BROKEN", f"the original fragment occurs {text.count(old)} times in {path}"
    f.write_text(text.replace(old, new))
    try:
        p = subprocess.run(["cargo", "test", "--release", "-q", *args], cwd=ROOT, capture_output=True, text=True,
                           timeout=1200)
    finally:
        f.write_text(text)
    out = p.stdout + p.stderr
    if p.returncode == 0:
        return "SURVIVED", "the test passed with the code broken"
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if "panicked at" in line:
            msg = " ".join(l.strip() for l in lines[i + 1:i + 4] if l.strip() and not l.startswith("stack"))
            return "CAUGHT", f"{line.split('panicked at')[1].strip()} {msg}"[:400]
        if line.startswith("error[") or line.startswith("error:"):
            return "BROKEN", "the mutation did not compile: " + line[:200]
    return "CAUGHT", lines[-1][:300] if lines else "failed"


def main():
    words = sys.argv[1:]
    survived = 0
    for m in MUTATIONS:
        if words and not any(w in m[0] for w in words):
            continue
        verdict, detail = run(*m)
        survived += verdict != "CAUGHT"
        print(f"{verdict:8s} {m[0]}\n         {' '.join(m[4])}\n         {detail}", flush=True)
    sys.exit(1 if survived else 0)


if __name__ == "__main__":
    main()
