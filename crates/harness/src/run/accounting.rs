//! What a run records: one row per epoch and a summary, with every time component separated.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::{PolicyArg, Settings};
use crate::resources;

/// One epoch of a run: the tidy per-epoch CSV row.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EpochRow {
    /// The run's id (its output directory name unless given).
    pub run_id: String,
    /// Dataset.
    pub dataset: String,
    /// Model.
    pub model: String,
    /// Policy.
    pub policy: String,
    /// Nominal fraction removed per pruned epoch.
    pub prune_fraction: f64,
    /// Root seed.
    pub seed: u64,
    /// Epoch (from 0).
    pub epoch: usize,
    /// The schedule's phase: warmup, select, reuse, anneal, full.
    pub phase: String,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss over the epoch's samples (before each step).
    pub train_loss: f64,
    /// Training accuracy over the epoch's samples (before each step).
    pub train_acc: f64,
    /// Test loss (empty if not evaluated this epoch).
    pub test_loss: Option<f64>,
    /// Test accuracy (empty if not evaluated this epoch).
    pub test_acc: Option<f64>,
    /// Samples forwarded and back-propagated this epoch.
    pub samples: usize,
    /// Cumulative samples since the start of the run.
    pub cumulative_samples: usize,
    /// Fraction of the epoch's plan also in the previous epoch's plan.
    pub overlap: Option<f64>,
    /// Fraction of the dataset in at least one pruned epoch's plan so far (empty before the first
    /// pruned epoch).
    #[serde(default)]
    pub coverage: Option<f64>,
    /// Samples in no pruned epoch's plan so far (empty before the first pruned epoch).
    #[serde(default)]
    pub never_selected: Option<usize>,
    /// Mean over seen samples of the epochs since each was last observed, when the plan was made
    /// (after any re-scoring).
    #[serde(default)]
    pub mean_staleness: f64,
    /// The largest such age.
    #[serde(default)]
    pub max_staleness: u32,
    /// Sum of the plan's loss weights (= `samples` for unweighted rules; InfoBatch's rescaled
    /// survivors make it about the dataset size).
    #[serde(default)]
    pub weight_sum: f64,
    /// Learning-rate factor the rule asked for (KAKURENBO; 1 otherwise).
    #[serde(default = "one")]
    pub lr_factor: f64,
    /// Samples given a forward-only re-scoring pass before this epoch's selection.
    #[serde(default)]
    pub rescore_samples: usize,
    /// Time of that pass, seconds (part of `train_s`).
    #[serde(default)]
    pub rescore_s: f64,
    /// Building the plan (selection and shuffle), seconds.
    pub select_s: f64,
    /// Waiting for batches, seconds.
    pub data_s: f64,
    /// Forward, backward and optimizer step, seconds.
    pub compute_s: f64,
    /// Per-sample score extraction and buffer updates, seconds.
    pub observe_s: f64,
    /// Test-set evaluation, seconds.
    pub eval_s: f64,
    /// Writing the checkpoint, seconds.
    pub checkpoint_s: f64,
    /// Wall clock of the whole epoch, seconds.
    pub wall_s: f64,
    /// Wall clock of the epoch minus evaluation and checkpointing: the training cost.
    pub train_s: f64,
    /// Cumulative training cost since the start of the run (excluding static scoring).
    pub cumulative_train_s: f64,
    /// CPU seconds the process used over the same span as `train_s` (all threads): steadier than
    /// wall time when other processes share the machine.
    #[serde(default)]
    pub cpu_s: f64,
}

fn one() -> f64 {
    1.0
}

fn nominal() -> String {
    dynaprune::catalog::BUDGET_NOMINAL.into()
}

/// The end-of-run summary (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// The run's id.
    pub run_id: String,
    /// Dataset.
    pub dataset: String,
    /// Model.
    pub model: String,
    /// Policy.
    pub policy: String,
    /// The rule variant as reports name it (`ucb`, `ucb-plain`, `ucb+rescore2`, ...; see
    /// `TrainArgs::method_label`). Empty in summaries written before it existed: use `policy`.
    #[serde(default)]
    pub method: String,
    /// Nominal prune fraction.
    pub prune_fraction: f64,
    /// Sample-pass budget: `matched` or `nominal` (summaries written before budgets existed were
    /// nominal).
    #[serde(default = "nominal")]
    pub budget: String,
    /// The fraction each pruned epoch removed (differs from `prune_fraction` under the matched
    /// budget when warm-up or annealing epochs spend part of it).
    #[serde(default)]
    pub pruned_epoch_fraction: Option<f64>,
    /// Root seed.
    pub seed: u64,
    /// Epochs.
    pub epochs: usize,
    /// Test accuracy after the last epoch.
    pub final_test_acc: f64,
    /// Test loss after the last epoch.
    pub final_test_loss: f64,
    /// Best test accuracy over evaluated epochs.
    pub best_test_acc: f64,
    /// Samples trained on, all epochs.
    pub samples: usize,
    /// Samples a full-data run of the same length trains on.
    pub full_data_samples: usize,
    /// Training cost: sum of the epochs' `train_s`.
    pub train_s: f64,
    /// Static scoring cost charged to this run, wall seconds (0 for other rules).
    pub static_scoring_s: f64,
    /// The same in process CPU seconds (0 for other rules; absent where the scores' sidecar
    /// predates its recording).
    #[serde(default)]
    pub static_scoring_cpu_s: Option<f64>,
    /// What the static scores were, if any.
    pub static_scoring: Option<String>,
    /// `train_s + static_scoring_s`: the number the paper's comparison is about. Any re-scoring
    /// pass is part of `train_s`.
    pub total_s: f64,
    /// Forward-only re-scoring passes, seconds (included in `train_s`).
    #[serde(default)]
    pub rescore_s: f64,
    /// Samples forwarded (not trained on) by re-scoring passes, all epochs.
    #[serde(default)]
    pub rescore_samples: usize,
    /// Process CPU seconds over the training epochs (same span as `train_s`, all threads).
    #[serde(default)]
    pub cpu_s: f64,
    /// Mean overlap with the previous plan over the pruned epochs whose previous epoch was also
    /// pruned (1.0 = the rule keeps choosing the same samples); empty without two such epochs.
    #[serde(default)]
    pub mean_overlap: Option<f64>,
    /// Peak resident memory of the process, MiB.
    #[serde(default)]
    pub peak_rss_mib: f64,
    /// Everything, evaluation and checkpoints included.
    pub wall_s: f64,
    /// Time components summed over epochs: select, data, compute, observe, eval, checkpoint.
    pub select_s: f64,
    /// See `select_s`.
    pub data_s: f64,
    /// See `select_s`.
    pub compute_s: f64,
    /// See `select_s`.
    pub observe_s: f64,
    /// See `select_s`.
    pub eval_s: f64,
    /// See `select_s`.
    pub checkpoint_s: f64,
    /// Epochs that trained on a pruned subset.
    #[serde(default)]
    pub pruned_epochs: usize,
    /// `selection_histogram[k]` = number of samples selected in exactly `k` of the pruned epochs
    /// (the paper's "sometimes samples": who is always, never or sometimes trained on).
    #[serde(default)]
    pub selection_histogram: Vec<usize>,
    /// Device the run used.
    pub device: String,
    /// Worker threads.
    pub threads: usize,
}

/// Mean overlap with the previous plan over the pruned epochs (`select`/`reuse`) whose previous
/// epoch was pruned too, from `(phase, overlap)` per epoch in order. The first pruned epoch after
/// a full-data warm-up overlaps 1.0 by construction, so it is left out. `None` without two
/// consecutive pruned epochs.
pub fn mean_pruned_overlap<'a>(epochs: impl IntoIterator<Item = (&'a str, Option<f64>)>) -> Option<f64> {
    let pruned = |p: &str| p == "select" || p == "reuse";
    let (mut sum, mut n, mut prev_pruned) = (0.0, 0usize, false);
    for (phase, overlap) in epochs {
        if pruned(phase) && prev_pruned {
            if let Some(o) = overlap {
                sum += o;
                n += 1;
            }
        }
        prev_pruned = pruned(phase);
    }
    (n > 0).then(|| sum / n as f64)
}

/// Static scoring charged to a run: its wall and CPU seconds and what it computed.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticCost {
    /// Wall seconds (0 without static scores).
    pub wall_s: f64,
    /// Process CPU seconds; `None` where the scores' sidecar did not record them.
    pub cpu_s: Option<f64>,
    /// What the scores were.
    pub label: Option<String>,
}

impl StaticCost {
    /// No static scores: nothing charged.
    pub fn none() -> Self {
        Self { wall_s: 0.0, cpu_s: Some(0.0), label: None }
    }

    /// The cost recorded with a set of scores.
    pub fn of(info: crate::scoring::ScoreInfo) -> Self {
        Self { wall_s: info.seconds, cpu_s: info.cpu_seconds, label: Some(info.label) }
    }
}

/// The summary of a finished run: its rows added up, static scoring charged, and the histogram
/// of how many pruned epochs each sample was selected in.
pub fn summarize(
    s: &Settings,
    id: &str,
    rows: &[EpochRow],
    n_train: usize,
    static_cost: &StaticCost,
    pruned_epochs: usize,
    pruned_counts: &[u32],
) -> Result<Summary> {
    let last = rows.last().context("no epoch ran")?;
    let sum = |f: fn(&EpochRow) -> f64| rows.iter().map(f).sum::<f64>();
    let train_s = sum(|r| r.train_s);
    let p = &s.pruning;
    let mut selection_histogram = vec![0usize; pruned_epochs + 1];
    for &c in pruned_counts {
        selection_histogram[(c as usize).min(pruned_epochs)] += 1;
    }
    Ok(Summary {
        run_id: id.into(),
        dataset: s.data.dataset.as_str().into(),
        model: s.model.name.clone(),
        policy: p.policy.as_str().into(),
        method: p.method.clone(),
        prune_fraction: last.prune_fraction,
        budget: if p.policy == PolicyArg::Full {
            dynaprune::catalog::BUDGET_NONE.into()
        } else {
            p.budget.as_str().into()
        },
        pruned_epoch_fraction: p.pruned_epoch_fraction,
        seed: s.run.seed,
        epochs: s.optim.epochs,
        final_test_acc: last.test_acc.unwrap_or(f64::NAN),
        final_test_loss: last.test_loss.unwrap_or(f64::NAN),
        best_test_acc: rows.iter().filter_map(|r| r.test_acc).fold(f64::NAN, f64::max),
        samples: last.cumulative_samples,
        full_data_samples: n_train * s.optim.epochs,
        train_s,
        static_scoring_s: static_cost.wall_s,
        static_scoring_cpu_s: static_cost.cpu_s,
        static_scoring: static_cost.label.clone(),
        total_s: train_s + static_cost.wall_s,
        rescore_s: sum(|r| r.rescore_s),
        rescore_samples: rows.iter().map(|r| r.rescore_samples).sum(),
        cpu_s: sum(|r| r.cpu_s),
        mean_overlap: mean_pruned_overlap(rows.iter().map(|r| (r.phase.as_str(), r.overlap))),
        peak_rss_mib: resources::peak_rss_mib(),
        wall_s: sum(|r| r.wall_s),
        select_s: sum(|r| r.select_s),
        data_s: sum(|r| r.data_s),
        compute_s: sum(|r| r.compute_s),
        observe_s: sum(|r| r.observe_s),
        eval_s: sum(|r| r.eval_s),
        checkpoint_s: sum(|r| r.checkpoint_s),
        pruned_epochs,
        selection_histogram,
        device: format!("{:?}", s.run.device),
        threads: rayon::current_num_threads(),
    })
}
