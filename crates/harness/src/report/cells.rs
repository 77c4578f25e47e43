//! Runs grouped into cells (dataset, model, method, budget, prune fraction) and aggregated over
//! seeds; speed-ups paired with the same seed's full-data run, checked against the sample-pass
//! bound.

use std::collections::BTreeMap;

use clap::ValueEnum;
use serde::Serialize;

use super::load::{RunRow, UNKNOWN};
use super::stats::{mean_std, Paired};
use crate::config::{policy_of_method, PolicyArg};

/// One (dataset, model, method, budget, prune fraction) cell, aggregated over seeds.
///
/// Speed-ups are *paired by seed*: each run is divided into the full-data run of the same
/// dataset, model and seed, and the ratios are averaged over seeds. The sample-pass bound is the
/// exact ratio of full-data to this run's training sample passes: with the same work per pass, no
/// run can be faster than that, so a measured speed-up above it is timing noise.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Dataset.
    pub dataset: String,
    /// Model.
    pub model: String,
    /// Method (rule variant).
    pub method: String,
    /// Budget (`matched`, `nominal`, or `none` for full data).
    pub budget: String,
    /// Prune fraction.
    pub prune_fraction: f64,
    /// Seeds aggregated.
    pub seeds: usize,
    /// Test accuracy mean.
    pub acc_mean: f64,
    /// Test accuracy sample standard deviation (NaN with one seed).
    pub acc_std: f64,
    /// Training time mean (wall).
    pub train_s: f64,
    /// Training + static scoring mean (wall).
    pub total_s: f64,
    /// Training CPU time mean (NaN when not recorded).
    pub cpu_s: f64,
    /// Fraction of full-data sample passes used.
    pub sample_fraction: f64,
    /// Forward-only passes (re-scoring, Selective-Backprop's candidate passes) as a fraction of
    /// the full-data training passes: work the training passes do not count.
    pub forward_fraction: f64,
    /// Full-data training passes / this run's: the largest speed-up the work allows.
    pub bound: f64,
    /// Wall-time speed-up over the same seed's full-data run (training time), mean over seeds.
    pub speedup_wall: f64,
    /// CPU-time speed-up over the same seed's full-data run, mean over seeds.
    pub speedup_cpu: f64,
    /// Total-time speed-up (static scoring included), wall, mean over seeds.
    pub speedup_total: f64,
    /// Total-time speed-up in CPU time (training and static scoring), mean over seeds; NaN
    /// unless every paired run recorded both.
    pub speedup_total_cpu: f64,
    /// Seeds whose full-data baseline exists (the speed-ups use only those).
    pub paired_seeds: usize,
    /// Runs whose wall-time speed-up exceeds its bound by more than 5% (timing noise).
    pub noisy_wall: usize,
    /// Runs whose CPU-time speed-up exceeds its bound by more than 5%.
    pub noisy_cpu: usize,
    /// Runs whose total-time speed-up (wall, static scoring included) exceeds its bound by more
    /// than 5%: the bound holds for it too, since scoring only adds time.
    pub noisy_total: usize,
    /// The same for the total-time speed-up in CPU time.
    pub noisy_total_cpu: usize,
    /// Runs whose full-data baseline took another kernel path (another CPU kind): their
    /// speed-ups compare two machines. Runs that did not record their path are not counted.
    pub cross_kernel: usize,
    /// Mean milliseconds of training time per sample pass (training + re-scoring passes).
    pub ms_per_pass: f64,
}

/// The method of the full-data baseline.
pub const FULL_METHOD: &str = dynaprune::catalog::FULL.name;
/// The budget of the full-data baseline (every budget shares it).
pub const NO_BUDGET: &str = dynaprune::catalog::BUDGET_NONE;

/// A speed-up counts as timing noise when it exceeds the sample-pass bound by more than this.
pub const NOISE_TOLERANCE: f64 = 0.05;

/// A cell: (dataset, model, method, budget, prune fraction in millionths).
pub(crate) type GroupKey = (String, String, String, String, u64);

pub(crate) fn group_key(r: &RunRow) -> GroupKey {
    (r.dataset.clone(), r.model.clone(), r.method.clone(), r.budget.clone(), (r.prune_fraction * 1e6).round() as u64)
}

/// The runs of each cell.
pub(crate) fn groups(rows: &[RunRow]) -> BTreeMap<GroupKey, Vec<&RunRow>> {
    let mut g: BTreeMap<GroupKey, Vec<&RunRow>> = BTreeMap::new();
    for r in rows {
        g.entry(group_key(r)).or_default().push(r);
    }
    g
}

/// The full-data run of the same dataset, model and seed, if any.
fn baseline<'a>(rows: &'a [RunRow], r: &RunRow) -> Option<&'a RunRow> {
    rows.iter().find(|b| b.method == FULL_METHOD && b.dataset == r.dataset && b.model == r.model && b.seed == r.seed)
}

/// One run's speed-ups over its baseline (NaN where a time was not recorded).
struct Speedups {
    /// Training wall time.
    wall: f64,
    /// Training CPU time.
    cpu: f64,
    /// Training + static scoring, wall time.
    total: f64,
    /// Training + static scoring, CPU time.
    total_cpu: f64,
    /// Full-data sample passes over the run's.
    bound: f64,
    /// The two runs took different recorded kernel paths.
    cross_kernel: bool,
}

/// The speed-ups of `r` over its baseline `b`.
fn speedups(r: &RunRow, b: &RunRow) -> Speedups {
    let over = |base: f64, this: f64| if base > 0.0 && this > 0.0 { base / this } else { f64::NAN };
    Speedups {
        wall: b.train_s / r.train_s,
        cpu: over(b.cpu_s, r.cpu_s),
        total: b.train_s / r.total_s,
        total_cpu: over(b.cpu_s, r.total_cpu_s),
        bound: b.samples as f64 / r.samples.max(1) as f64,
        cross_kernel: r.kernels != UNKNOWN && b.kernels != UNKNOWN && r.kernels != b.kernels,
    }
}

/// `true` when a measured speed-up exceeds the sample-pass bound by more than
/// [`NOISE_TOLERANCE`].
pub fn is_noise(speedup: f64, bound: f64) -> bool {
    speedup.is_finite() && speedup > bound * (1.0 + NOISE_TOLERANCE)
}

fn mean_of(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Aggregates runs into cells (see [`Cell`] for how speed-ups are paired).
pub fn cells(rows: &[RunRow]) -> Vec<Cell> {
    groups(rows)
        .into_iter()
        .map(|((d, m, p, budget, _), v)| {
            let (acc_mean, acc_std) = mean_std(&v.iter().map(|r| r.final_test_acc).collect::<Vec<_>>());
            let paired: Vec<Speedups> = v.iter().filter_map(|r| baseline(rows, r).map(|b| speedups(r, b))).collect();
            let noisy = |f: fn(&Speedups) -> f64| paired.iter().filter(|x| is_noise(f(x), x.bound)).count();
            let mean = |f: fn(&Speedups) -> f64| mean_of(paired.iter().map(f));
            Cell {
                dataset: d,
                model: m,
                method: p,
                budget,
                prune_fraction: v[0].prune_fraction,
                seeds: v.len(),
                acc_mean,
                acc_std: if v.len() > 1 { acc_std } else { f64::NAN },
                train_s: mean_of(v.iter().map(|r| r.train_s)),
                total_s: mean_of(v.iter().map(|r| r.total_s)),
                cpu_s: mean_of(v.iter().map(|r| if r.cpu_s > 0.0 { r.cpu_s } else { f64::NAN })),
                sample_fraction: mean_of(v.iter().map(|r| r.samples as f64 / r.full_data_samples.max(1) as f64)),
                forward_fraction: mean_of(
                    v.iter().map(|r| r.rescore_samples as f64 / r.full_data_samples.max(1) as f64),
                ),
                bound: mean_of(v.iter().map(|r| r.full_data_samples as f64 / r.samples.max(1) as f64)),
                speedup_wall: mean(|x| x.wall),
                speedup_cpu: mean(|x| x.cpu),
                speedup_total: mean(|x| x.total),
                speedup_total_cpu: if paired.iter().all(|x| x.total_cpu.is_finite()) {
                    mean(|x| x.total_cpu)
                } else {
                    f64::NAN
                },
                paired_seeds: paired.len(),
                noisy_wall: noisy(|x| x.wall),
                noisy_cpu: noisy(|x| x.cpu),
                cross_kernel: paired.iter().filter(|x| x.cross_kernel).count(),
                noisy_total: noisy(|x| x.total),
                noisy_total_cpu: noisy(|x| x.total_cpu),
                ms_per_pass: mean_of(v.iter().map(|r| r.ms_per_pass)),
            }
        })
        .collect()
}

/// Per-seed accuracy differences of the runs in `a` against those of `b` with the same seed.
pub fn paired(a: &[&RunRow], b: &[&RunRow]) -> Paired {
    let d: Vec<f64> = a
        .iter()
        .filter_map(|x| b.iter().find(|y| y.seed == x.seed).map(|y| x.final_test_acc - y.final_test_acc))
        .collect();
    Paired::from_diffs(&d)
}

/// Methods are listed in the order `dynaprune train --policy` declares their policies; variants
/// of one policy by name.
pub(crate) fn policy_rank(method: &str) -> (usize, String) {
    let all = PolicyArg::value_variants();
    // Chart labels carry the budget after the method: `ucb (nominal)`.
    let method = method.split(" (").next().unwrap_or(method);
    let rank = policy_of_method(method).and_then(|a| all.iter().position(|v| *v == a)).unwrap_or(all.len());
    (rank, method.to_string())
}
