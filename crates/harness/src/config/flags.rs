//! The flags of `dynaprune train` (clap), which also serialise as the run's `config.json`, so
//! every result folder says exactly how it was produced. They only declare: their values are in
//! [`super::values`], and [`TrainArgs::resolve`] (`config/resolve.rs`) turns them into the typed
//! [`super::Settings`].

use std::path::PathBuf;

use clap::Args;

use super::values::*;
use serde::{Deserialize, Serialize};

/// Flags of `dynaprune train` (and the training part of `dynaprune score`).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct TrainArgs {
    /// Dataset.
    #[arg(long, value_enum, default_value_t = DatasetArg::FashionMnist)]
    pub dataset: DatasetArg,
    /// Directory holding the dataset (or its parent). Default: `data/`, then Debian's
    /// `/usr/share/datasets/fashion-mnist` for Fashion-MNIST.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N training samples (0 = all): quick experiments and tests.
    #[arg(long, default_value_t = 0)]
    pub max_train_samples: usize,
    /// Use only the first N test samples (0 = all).
    #[arg(long, default_value_t = 0)]
    pub max_test_samples: usize,
    /// Model: a name registered in `models` (the list is in `--help`).
    #[arg(long, default_value = "resnet8", help = crate::models::help(), value_parser = crate::models::parse_name)]
    pub model: String,
    /// Multiplies every stage width.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Arithmetic of the convolutions: f32, or bf16 mixed precision (bf16 products, f32
    /// accumulation, f32 weights and optimiser; on the CPU it needs AVX512_BF16).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    #[serde(default, skip_serializing_if = "PrecisionArg::is_f32")]
    pub precision: PrecisionArg,
    /// CPU convolution kernels: `im2col` (im2col + GEMM; default, and what every committed
    /// result was made with), `direct` (direct NHWC convolutions with BatchNorm fused, on this
    /// CPU's fastest instruction set; faster: docs/PERFORMANCE.md), or `direct-avx512`,
    /// `direct-avx2`, `direct-portable` to force one (refused where the CPU cannot run it). A
    /// GPU always runs Candle's kernels.
    #[arg(long, value_enum, default_value_t = KernelsArg::Im2col)]
    #[serde(default, skip_serializing_if = "KernelsArg::is_im2col")]
    pub kernels: KernelsArg,
    /// Selection rule.
    #[arg(long, value_enum, default_value_t = PolicyArg::Full)]
    pub policy: PolicyArg,
    /// Fraction of the training set REMOVED per pruned epoch, in [0, 1).
    #[arg(long, default_value_t = 0.5)]
    pub prune_fraction: f64,
    /// Sample-pass budget: `matched` (every rule spends what uniform random spends at
    /// --prune-fraction, warm-up and annealing included) or `nominal` (each pruned epoch removes
    /// --prune-fraction).
    #[arg(long, value_enum, default_value_t = BudgetArg::Matched)]
    #[serde(default = "serde_defaults::budget")]
    pub budget: BudgetArg,
    /// Resolved, not a flag: the fraction each pruned epoch removes under --budget.
    #[arg(skip)]
    #[serde(default)]
    pub pruned_epoch_fraction: Option<f64>,
    /// Full-data epochs before pruning starts (default: 1 for score-based dynamic rules, else 0).
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// Re-select every T epochs; epochs in between reuse (reshuffle) the last selection.
    #[arg(long, default_value_t = 1)]
    pub selection_interval: usize,
    /// Full-data epochs at the end (default: InfoBatch's 1 - delta = 12.5% of the run for
    /// infobatch, else 0).
    #[arg(long)]
    pub anneal_epochs: Option<usize>,
    /// Epsilon-greedy's exploration fraction.
    #[arg(long, default_value_t = dynaprune::EpsilonGreedy::DEFAULT_EPSILON)]
    pub epsilon: f64,
    /// Per-epoch multiplicative decay of epsilon (1 = constant).
    #[arg(long, default_value_t = 1.0)]
    pub epsilon_decay: f64,
    /// UCB's weight on the standard deviation.
    #[arg(long, default_value_t = dynaprune::Ucb::DEFAULT_C)]
    pub ucb_c: f64,
    /// UCB and epsilon-greedy: how the statistics of samples they skipped age.
    #[arg(long, value_enum, default_value_t = StalenessArg::Prior)]
    #[serde(default = "serde_defaults::staleness")]
    pub staleness: StalenessArg,
    /// `--staleness prior`: per-epoch weight kept on a stale sample's own statistics, in [0, 1].
    #[arg(long, default_value_t = dynaprune::Staleness::DEFAULT_RETENTION)]
    #[serde(default = "serde_defaults::retention")]
    pub staleness_retention: f64,
    /// `--staleness prior`: per-epoch growth of a stale sample's variance, in prior variances.
    #[arg(long, default_value_t = dynaprune::Staleness::DEFAULT_DRIFT)]
    #[serde(default = "serde_defaults::drift")]
    pub staleness_drift: f64,
    /// `--staleness count-bonus`: the bonus weight.
    #[arg(long, default_value_t = dynaprune::Staleness::DEFAULT_BONUS)]
    #[serde(default = "serde_defaults::bonus")]
    pub staleness_bonus: f64,
    /// Score-based rules: every R-th selection, give each sample not observed in the last R
    /// epochs a fresh score with a forward-only pass (its time and passes are charged). 0 = off.
    /// KAKURENBO always re-scores its hidden samples every epoch.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub rescore_every: usize,
    /// KAKURENBO: confidence a correctly predicted low-loss sample needs to stay hidden.
    #[arg(long, default_value_t = dynaprune::Kakurenbo::DEFAULT_TAU)]
    #[serde(default = "serde_defaults::tau")]
    pub kakurenbo_tau: f64,
    /// KAKURENBO: the learning-rate factor `1 / (1 - x)` from `max-fraction` (x = the largest
    /// fraction the epoch may hide, the reference's rule) or `hidden-fraction` (x = the fraction
    /// actually hidden that epoch). Method label `kakurenbo+lrhidden`.
    #[arg(long, value_enum, default_value_t = KakurenboLrArg::MaxFraction)]
    #[serde(default, skip_serializing_if = "KakurenboLrArg::is_reference")]
    pub kakurenbo_lr: KakurenboLrArg,
    /// SeTa: number of loss groups (k-means clusters), >= 1.
    #[arg(long, default_value_t = dynaprune::Seta::DEFAULT_GROUPS)]
    #[serde(default = "serde_defaults::seta_groups", skip_serializing_if = "serde_defaults::is_seta_groups")]
    pub seta_groups: usize,
    /// SeTa: the window keeps round_half_even(groups * scale) consecutive groups; in (0, 1].
    #[arg(long, default_value_t = dynaprune::Seta::DEFAULT_WINDOW_SCALE)]
    #[serde(default = "serde_defaults::seta_window", skip_serializing_if = "serde_defaults::is_seta_window")]
    pub seta_window_scale: f64,
    /// SeTa: random subsets instead of windows from this fraction of the epochs on; in (0, 1].
    #[arg(long, default_value_t = dynaprune::Seta::DEFAULT_DELTA)]
    #[serde(default = "serde_defaults::seta_delta", skip_serializing_if = "serde_defaults::is_seta_delta")]
    pub seta_delta: f64,
    /// SeTa: `exact` keeps round((1 - f) * N) samples per pruned epoch (equal budgets); `reference`
    /// follows the reference code's arithmetic (about (1 - f) * window of them).
    #[arg(long, value_enum, default_value_t = SetaBudgetArg::Exact)]
    #[serde(default, skip_serializing_if = "SetaBudgetArg::is_exact")]
    pub seta_budget: SetaBudgetArg,
    /// Selective-Backprop: keep probability percentile^beta (default: f / (1 - f) for the
    /// pruned-epoch fraction f, which keeps 1 - f of the passes in expectation).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sb_beta: Option<f64>,
    /// Selective-Backprop: losses in the percentile history, >= 1.
    #[arg(long, default_value_t = dynaprune::SelectiveBackprop::DEFAULT_HISTORY)]
    #[serde(default = "serde_defaults::sb_history", skip_serializing_if = "serde_defaults::is_sb_history")]
    pub sb_history: usize,
    /// Selective-Backprop: the smallest keep probability, in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    #[serde(default, skip_serializing_if = "serde_defaults::is_zero")]
    pub sb_floor: f64,
    /// Decay of the per-sample exponential moving averages (default: what the rule is tuned
    /// for, 0.5 for epsilon-greedy with staleness on, else 0.9).
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// Which per-sample value dynamic rules observe.
    #[arg(long, value_enum, default_value_t = ScoreArg::Loss)]
    pub score: ScoreArg,
    /// How InfoBatch's drop probability follows `--prune-fraction`.
    #[arg(long, value_enum, default_value_t = InfobatchMode::Target)]
    pub infobatch_mode: InfobatchMode,
    /// Upper bound on InfoBatch's drop probability in target mode.
    #[arg(long, default_value_t = dynaprune::InfoBatch::DEFAULT_MAX_DROP_PROBABILITY)]
    pub infobatch_max_r: f64,
    /// Static rules: which part of the score ranking to keep (`highest`, `lowest`, or
    /// `window:F` to skip the top F fraction first).
    #[arg(long, default_value = "highest")]
    pub static_keep: String,
    /// Static rules: a score file written by `dynaprune score` (its cost is charged to this
    /// run). Without it the scores are computed first, inside this run.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Static scorers: independent models (EL2N) or initialisations (GraNd).
    #[arg(long, default_value_t = 10)]
    pub scorer_models: usize,
    /// EL2N: training epochs per model (default: 10% of --epochs, at least 1; the Data Diet
    /// recipe is 20 of 200).
    #[arg(long)]
    pub el2n_epochs: Option<usize>,
    /// Forgetting: epochs of the full-data run (default: --epochs).
    #[arg(long)]
    pub forgetting_epochs: Option<usize>,
    /// Training epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Learning-rate schedule over training progress: constant, cosine, onecycle, step or
    /// `step:<fractions>`.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Plain (heavy-ball) momentum instead of Nesterov.
    #[arg(long)]
    pub no_nesterov: bool,
    /// L2 weight decay (not on biases and BatchNorm).
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// Label smoothing of the training loss.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Augmentation recipe.
    #[arg(long, value_enum, default_value_t = AugmentArg::Default)]
    pub augment: AugmentArg,
    /// Root seed: fixes weights, data order, augmentation and selections.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory (config, per-epoch CSV, summary, checkpoints).
    #[arg(long, default_value = "runs/latest")]
    pub out: PathBuf,
    /// Continue an interrupted run from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Evaluate on the test set every N epochs (the last epoch always).
    #[arg(long, default_value_t = 1)]
    pub eval_every: usize,
    /// Stop after this many epochs of this invocation (the run stays resumable): for tests
    /// and time-boxed jobs.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Progress display: auto (bar on a terminal), bar, or plain log lines.
    #[arg(long, default_value = "auto")]
    pub progress: String,
}

impl TrainArgs {
    /// The rule as reports name it: the policy, `-plain` for UCB/epsilon-greedy with
    /// `--staleness off` (the original rule), `-bonus` with the count bonus, `+rescoreR` when
    /// a score-based rule re-scores by flag (KAKURENBO always does, so it gets no suffix), and
    /// `+warmupW` when a rule that needs no scores gets full-data warm-up epochs (random with the
    /// score-based rules' warm-up, to see the warm-up's effect on its own), and `+lrhidden` for
    /// KAKURENBO with `--kakurenbo-lr hidden-fraction`.
    pub fn method_label(&self) -> String {
        use dynaprune::catalog::{LabelStaleness, Method};
        let info = self.policy.info();
        let mut m = Method::of(info);
        if info.staleness {
            m.staleness = match self.staleness {
                StalenessArg::Prior => LabelStaleness::Default,
                StalenessArg::CountBonus => LabelStaleness::CountBonus,
                StalenessArg::Off => LabelStaleness::Off,
            };
        }
        if self.rescore_every > 0 && info.score_based && self.policy != PolicyArg::Kakurenbo {
            m.rescore_every = Some(self.rescore_every);
        }
        let warmup = self.warmup_epochs.unwrap_or(0);
        if warmup > 0 && self.policy != PolicyArg::Full && !info.score_based {
            m.warmup_epochs = Some(warmup);
        }
        m.lr_hidden = self.kakurenbo_lr == KakurenboLrArg::HiddenFraction;
        m.to_string()
    }
}

/// The policy behind a method label written by [`TrainArgs::method_label`] (`ucb-plain+rescore2`
/// -> `ucb`), or `None` for a name that is no policy ([`dynaprune::catalog::Method::rule_of`]).
pub fn policy_of_method(method: &str) -> Option<PolicyArg> {
    dynaprune::catalog::Method::rule_of(method).and_then(|r| PolicyArg::from_name(r.name))
}

/// Values for fields missing from a `config.json` written before they existed: what those runs
/// actually did (no staleness, no re-scoring), not today's defaults.
pub(super) mod serde_defaults {
    pub fn staleness() -> super::StalenessArg {
        super::StalenessArg::Off
    }
    pub fn budget() -> super::BudgetArg {
        super::BudgetArg::Nominal
    }
    pub fn retention() -> f64 {
        dynaprune::Staleness::DEFAULT_RETENTION
    }
    pub fn drift() -> f64 {
        dynaprune::Staleness::DEFAULT_DRIFT
    }
    pub fn bonus() -> f64 {
        dynaprune::Staleness::DEFAULT_BONUS
    }
    pub fn tau() -> f64 {
        dynaprune::Kakurenbo::DEFAULT_TAU
    }
    // SeTa's knobs are written into config.json only when they differ from the defaults, so the
    // configs (and resume fingerprints) of runs made before SeTa existed stay what they were.
    pub fn seta_groups() -> usize {
        dynaprune::Seta::DEFAULT_GROUPS
    }
    pub fn is_seta_groups(v: &usize) -> bool {
        *v == dynaprune::Seta::DEFAULT_GROUPS
    }
    pub fn seta_window() -> f64 {
        dynaprune::Seta::DEFAULT_WINDOW_SCALE
    }
    pub fn is_seta_window(v: &f64) -> bool {
        *v == dynaprune::Seta::DEFAULT_WINDOW_SCALE
    }
    pub fn seta_delta() -> f64 {
        dynaprune::Seta::DEFAULT_DELTA
    }
    pub fn is_seta_delta(v: &f64) -> bool {
        *v == dynaprune::Seta::DEFAULT_DELTA
    }
    pub fn sb_history() -> usize {
        dynaprune::SelectiveBackprop::DEFAULT_HISTORY
    }
    pub fn is_sb_history(v: &usize) -> bool {
        *v == dynaprune::SelectiveBackprop::DEFAULT_HISTORY
    }
    pub fn is_zero(v: &f64) -> bool {
        *v == 0.0
    }
}
