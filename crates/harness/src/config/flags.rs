//! The flags of `dynaprune train` (clap), which also serialise as the run's `config.json`, so
//! every result folder says exactly how it was produced. [`TrainArgs::resolve`] fills the
//! defaults that depend on other flags, checks ranges and returns the typed [`Settings`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use dynaprune::catalog::RuleInfo;

use super::settings::{self, Settings};
use serde::{Deserialize, Serialize};

/// Datasets the harness trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetArg {
    /// Fashion-MNIST (IDX files; Debian's `dataset-fashion-mnist` works as is).
    FashionMnist,
    /// CIFAR-10, binary version.
    Cifar10,
    /// CIFAR-100 (fine labels), binary version.
    Cifar100,
    /// Generated in memory from the seed, 1x16x16, 4 classes (tests and the smoke preset; never
    /// for results).
    Synthetic,
    /// Generated in memory from the seed in CIFAR's shape, 3x32x32, 10 classes, 4096 + 1024
    /// images (3-channel models and speed checks; never for results).
    SyntheticCifar,
}

impl DatasetArg {
    /// The name used on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetArg::FashionMnist => "fashion-mnist",
            DatasetArg::Cifar10 => "cifar10",
            DatasetArg::Cifar100 => "cifar100",
            DatasetArg::Synthetic => "synthetic",
            DatasetArg::SyntheticCifar => "synthetic-cifar",
        }
    }
}

/// Every selection rule the harness can run: one variant per rule of
/// [`dynaprune::catalog::RULES`], whose facts (name, help, static or dynamic, scorer, defaults)
/// it reads from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PolicyArg {
    /// Full data.
    Full,
    /// Static random.
    StaticRandom,
    /// Static EL2N.
    El2n,
    /// Static GraNd, all parameters.
    Grand,
    /// Static GraNd, last layer.
    GrandLastLayer,
    /// Static forgetting.
    Forgetting,
    /// Dynamic uniform random.
    Random,
    /// Epsilon-greedy.
    EpsilonGreedy,
    /// UCB.
    Ucb,
    /// InfoBatch.
    Infobatch,
    /// RS2.
    Rs2,
    /// KAKURENBO.
    Kakurenbo,
    /// SeTa.
    Seta,
    /// Selective-Backprop.
    SelectiveBackprop,
}

impl PolicyArg {
    /// Every rule, in the catalog's order.
    pub const ALL: [PolicyArg; 14] = [
        PolicyArg::Full,
        PolicyArg::StaticRandom,
        PolicyArg::El2n,
        PolicyArg::Grand,
        PolicyArg::GrandLastLayer,
        PolicyArg::Forgetting,
        PolicyArg::Random,
        PolicyArg::EpsilonGreedy,
        PolicyArg::Ucb,
        PolicyArg::Infobatch,
        PolicyArg::Rs2,
        PolicyArg::Kakurenbo,
        PolicyArg::Seta,
        PolicyArg::SelectiveBackprop,
    ];

    /// The rule's facts.
    pub fn info(self) -> &'static RuleInfo {
        use dynaprune::catalog as c;
        match self {
            PolicyArg::Full => &c::FULL,
            PolicyArg::StaticRandom => &c::STATIC_RANDOM,
            PolicyArg::El2n => &c::EL2N,
            PolicyArg::Grand => &c::GRAND,
            PolicyArg::GrandLastLayer => &c::GRAND_LAST_LAYER,
            PolicyArg::Forgetting => &c::FORGETTING,
            PolicyArg::Random => &c::RANDOM,
            PolicyArg::EpsilonGreedy => &c::EPSILON_GREEDY,
            PolicyArg::Ucb => &c::UCB,
            PolicyArg::Infobatch => &c::INFOBATCH,
            PolicyArg::Rs2 => &c::RS2,
            PolicyArg::Kakurenbo => &c::KAKURENBO,
            PolicyArg::Seta => &c::SETA,
            PolicyArg::SelectiveBackprop => &c::SELECTIVE_BACKPROP,
        }
    }

    /// The name used on the command line and in results.
    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// The rule named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The static scorer this policy needs, if any.
    pub fn scorer(self) -> Option<ScorerArg> {
        self.info().scorer.map(|s| ScorerArg::from_str(s, false).expect("every catalog scorer is a ScorerArg"))
    }

    /// `true` for rules that re-select during training.
    pub fn is_dynamic(self) -> bool {
        self.info().is_dynamic()
    }

    /// `true` for dynamic rules that rank by per-sample scores (they get a full-data warm-up
    /// epoch by default, to fill the score buffer).
    pub fn is_score_based(self) -> bool {
        self.info().score_based
    }

    /// `true` for rules whose score ranking ages stale samples (`--staleness`).
    pub fn has_staleness(self) -> bool {
        self.info().staleness
    }
}

impl ValueEnum for PolicyArg {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()).help(self.info().summary))
    }
}

impl From<PolicyArg> for String {
    fn from(p: PolicyArg) -> String {
        p.as_str().to_string()
    }
}

impl TryFrom<String> for PolicyArg {
    type Error = String;
    fn try_from(name: String) -> std::result::Result<Self, String> {
        Self::from_name(&name).ok_or_else(|| format!("unknown policy `{name}`"))
    }
}

/// Static scorers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScorerArg {
    /// Mean EL2N over k short full-data training runs.
    El2n,
    /// Per-sample gradient norm over all parameters at initialisation, mean over k inits.
    Grand,
    /// Per-sample gradient norm of the last (linear) layer at initialisation, mean over k inits.
    GrandLastLayer,
    /// Forgetting events during a full-data run (never learned = infinity).
    Forgetting,
}

impl ScorerArg {
    /// The name used on the command line and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            ScorerArg::El2n => "el2n",
            ScorerArg::Grand => "grand",
            ScorerArg::GrandLastLayer => "grand-last-layer",
            ScorerArg::Forgetting => "forgetting",
        }
    }
}

/// Which per-sample value the dynamic policies observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreArg {
    /// Per-sample cross-entropy of the training forward pass (default; reconstructed).
    Loss,
    /// Per-sample EL2N of the training forward pass.
    El2n,
}

/// How UCB and epsilon-greedy age the statistics of samples they skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StalenessArg {
    /// Relax a stale sample's mean and variance towards the population prior, variance growing
    /// with age (default; reconstructed).
    Prior,
    /// UCB1's count bonus, `--staleness-bonus * sqrt(s2) * sqrt(ln(epoch + 1) / count)`.
    CountBonus,
    /// The original rule: skipped samples keep their frozen statistics.
    Off,
}

/// The arithmetic of the convolutions (`--precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrecisionArg {
    /// f32 everywhere (default; every published result).
    #[default]
    F32,
    /// Mixed precision: the convolutions' matrix products take bf16 operands with f32
    /// accumulation (on the CPU: AVX512_BF16, refused on CPUs without it; on a GPU: Candle's
    /// bf16 convolution); weights, optimiser state, BatchNorm and the loss stay f32.
    Bf16,
}

impl PrecisionArg {
    /// Not written into config.json when f32, so f32 runs keep the config (and resume
    /// fingerprint) they had before the flag existed.
    pub fn is_f32(&self) -> bool {
        *self == PrecisionArg::F32
    }
    /// The model crate's precision.
    pub fn precision(self) -> dynaprune_model::Precision {
        match self {
            PrecisionArg::F32 => dynaprune_model::Precision::F32,
            PrecisionArg::Bf16 => dynaprune_model::Precision::Bf16,
        }
    }
}

/// Which fraction KAKURENBO's learning-rate factor `1 / (1 - x)` uses (`--kakurenbo-lr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KakurenboLrArg {
    /// `x = F_e`, the largest fraction the epoch may hide (the reference code's rule; default).
    #[default]
    MaxFraction,
    /// `x` = the fraction actually hidden that epoch (no boost beyond what was hidden).
    HiddenFraction,
}

impl KakurenboLrArg {
    /// Not written into config.json when it is the reference's rule, so runs keep the config
    /// (and resume fingerprint) they had before the flag existed.
    pub fn is_reference(&self) -> bool {
        *self == KakurenboLrArg::MaxFraction
    }
    /// The crate's rule.
    pub fn rule(self) -> dynaprune::KakurenboLr {
        match self {
            KakurenboLrArg::MaxFraction => dynaprune::KakurenboLr::MaxFraction,
            KakurenboLrArg::HiddenFraction => dynaprune::KakurenboLr::HiddenFraction,
        }
    }
}

/// SeTa's budget rule (`--seta-budget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetaBudgetArg {
    /// Exactly round((1 - f) * N) samples per pruned epoch (default).
    #[default]
    Exact,
    /// The reference code's arithmetic: the window's part of a random (1 - f) of the samples.
    Reference,
}

impl SetaBudgetArg {
    /// Not written into config.json when it is the default.
    pub fn is_exact(&self) -> bool {
        *self == SetaBudgetArg::Exact
    }
    /// The crate's rule.
    pub fn rule(self) -> dynaprune::SetaBudget {
        match self {
            SetaBudgetArg::Exact => dynaprune::SetaBudget::Exact,
            SetaBudgetArg::Reference => dynaprune::SetaBudget::Reference,
        }
    }
}

/// How many sample passes a pruning rule may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetArg {
    /// Every rule spends what uniform random spends at `--prune-fraction`, `(1 - f) * N *
    /// epochs` passes: warm-up and annealing epochs count, so the pruned epochs keep fewer
    /// samples (default; comparisons at equal cost).
    Matched,
    /// Every pruned epoch removes `--prune-fraction`; warm-up and annealing come on top.
    Nominal,
}

impl BudgetArg {
    /// The name used on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetArg::Matched => "matched",
            BudgetArg::Nominal => "nominal",
        }
    }
}

/// Augmentation recipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentArg {
    /// The dataset's default: CIFAR recipe for CIFAR, none for Fashion-MNIST.
    Default,
    /// No augmentation.
    None,
    /// 2-pixel crop + flip.
    Light,
    /// 4-pixel crop + flip (the CIFAR recipe).
    Cifar,
}

/// How InfoBatch's drop probability is set from `--prune-fraction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InfobatchMode {
    /// `r` adapts each selection so the expected removed fraction is `--prune-fraction` (capped
    /// at `--infobatch-max-r`): comparable with the hard rules at the same prune fraction.
    Target,
    /// `r = --prune-fraction` as InfoBatch's own `ratio`: fewer samples are actually removed.
    DropProb,
}

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
    /// step:<fractions>.
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
    /// Fills the defaults that depend on other flags, checks ranges, and returns what the flags
    /// mean as typed settings (the flags stay, resolved, as the run's record).
    pub fn resolve(&mut self) -> Result<Settings> {
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if !(0.0..1.0).contains(&self.prune_fraction) {
            bail!("--prune-fraction must be in [0, 1) (the fraction of samples REMOVED), got {}", self.prune_fraction);
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be positive, got {}", self.lr);
        }
        if self.scorer_models == 0 {
            bail!("--scorer-models must be at least 1");
        }
        if self.eval_every == 0 {
            bail!("--eval-every must be at least 1");
        }
        if self.warmup_epochs.is_none() {
            self.warmup_epochs = Some(self.policy.info().warmup_epochs(self.epochs));
        }
        if self.ema_decay.is_none() {
            self.ema_decay = Some(settings::preferred_ema_decay(self)?);
        }
        for (flag, v) in [
            ("--staleness-retention", self.staleness_retention),
            ("--staleness-drift", self.staleness_drift),
            ("--staleness-bonus", self.staleness_bonus),
            ("--kakurenbo-tau", self.kakurenbo_tau),
        ] {
            if !v.is_finite() || v < 0.0 {
                bail!("{flag} must be a finite number >= 0, got {v}");
            }
        }
        if !self.kakurenbo_lr.is_reference() && self.policy != PolicyArg::Kakurenbo {
            bail!("--kakurenbo-lr applies to --policy kakurenbo only, not to --policy {}", self.policy.as_str());
        }
        self.check_seta()?;
        self.check_selective_backprop()?;
        if self.staleness_retention > 1.0 || self.kakurenbo_tau > 1.0 {
            bail!(
                "--staleness-retention and --kakurenbo-tau must be in [0, 1], got {} and {}",
                self.staleness_retention,
                self.kakurenbo_tau
            );
        }
        if self.anneal_epochs.is_none() {
            self.anneal_epochs = Some(self.policy.info().anneal_epochs(self.epochs));
        }
        if self.el2n_epochs.is_none() {
            self.el2n_epochs = Some(((self.epochs as f64 * 0.1).round() as usize).max(1));
        }
        if self.forgetting_epochs.is_none() {
            self.forgetting_epochs = Some(self.epochs);
        }
        let w = self.warmup_epochs.unwrap_or(0);
        let a = self.anneal_epochs.unwrap_or(0);
        if w + a > self.epochs {
            bail!("--warmup-epochs ({w}) + --anneal-epochs ({a}) exceed --epochs ({})", self.epochs);
        }
        self.pruned_epoch_fraction = match (self.budget, self.policy) {
            (_, PolicyArg::Full) => None,
            (BudgetArg::Nominal, _) => Some(self.prune_fraction),
            (BudgetArg::Matched, _) => Some(dynaprune::Schedule::new(self.epochs)
                .warmup(w)
                .anneal(a)
                .budget_matched_fraction(self.prune_fraction)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--budget matched with --prune-fraction {}, --epochs {}, --warmup-epochs {w}, --anneal-epochs {a}: {e}",
                        self.prune_fraction,
                        self.epochs
                    )
                })?),
        };
        Settings::from_resolved(self)
    }
}

impl TrainArgs {
    /// SeTa's knobs: each checked by the crate, the error naming the flag; set away from their
    /// defaults with another policy, they are refused (they would do nothing).
    fn check_seta(&self) -> Result<()> {
        let changed = [
            ("--seta-groups", !serde_defaults::is_seta_groups(&self.seta_groups)),
            ("--seta-window-scale", !serde_defaults::is_seta_window(&self.seta_window_scale)),
            ("--seta-delta", !serde_defaults::is_seta_delta(&self.seta_delta)),
            ("--seta-budget", !self.seta_budget.is_exact()),
        ];
        if self.policy != PolicyArg::Seta {
            if let Some((flag, _)) = changed.iter().find(|(_, c)| *c) {
                bail!("{flag} applies to --policy seta only, not to --policy {}", self.policy.as_str());
            }
            return Ok(());
        }
        let s = dynaprune::Seta::new(0.0).expect("0 is a valid prune fraction");
        let s = s.with_groups(self.seta_groups).with_context(|| format!("--seta-groups {}", self.seta_groups))?;
        s.with_window_scale(self.seta_window_scale)
            .with_context(|| {
                format!("--seta-window-scale {} with --seta-groups {}", self.seta_window_scale, self.seta_groups)
            })?
            .with_delta(self.seta_delta)
            .with_context(|| format!("--seta-delta {}", self.seta_delta))?;
        Ok(())
    }

    /// Selective-Backprop's knobs, checked by the crate, the error naming the flag; refused with
    /// another policy.
    fn check_selective_backprop(&self) -> Result<()> {
        let changed = [
            ("--sb-beta", self.sb_beta.is_some()),
            ("--sb-history", !serde_defaults::is_sb_history(&self.sb_history)),
            ("--sb-floor", self.sb_floor != 0.0),
        ];
        if self.policy != PolicyArg::SelectiveBackprop {
            if let Some((flag, _)) = changed.iter().find(|(_, c)| *c) {
                bail!("{flag} applies to --policy selective-backprop only, not to --policy {}", self.policy.as_str());
            }
            return Ok(());
        }
        let s = match self.sb_beta {
            Some(b) => dynaprune::SelectiveBackprop::new(b).with_context(|| format!("--sb-beta {b}"))?,
            None => dynaprune::SelectiveBackprop::new(1.0).expect("1 is a valid exponent"),
        };
        s.with_history(self.sb_history)
            .with_context(|| format!("--sb-history {}", self.sb_history))?
            .with_floor(self.sb_floor)
            .with_context(|| format!("--sb-floor {}", self.sb_floor))?;
        Ok(())
    }

    /// The rule as reports name it: the policy, `-plain` for UCB/epsilon-greedy with
    /// `--staleness off` (the original rule), `-bonus` with the count bonus, `+rescoreR` when
    /// a score-based rule re-scores by flag (KAKURENBO always does, so it gets no suffix), and
    /// `+warmupW` when a rule that needs no scores gets full-data warm-up epochs (random with the
    /// score-based rules' warm-up, to see the warm-up's effect on its own), and `+lrhidden` for
    /// KAKURENBO with `--kakurenbo-lr hidden-fraction`.
    pub fn method_label(&self) -> String {
        let mut s = self.policy.as_str().to_string();
        if self.policy.has_staleness() {
            match self.staleness {
                StalenessArg::Prior => {}
                StalenessArg::CountBonus => s.push_str("-bonus"),
                StalenessArg::Off => s.push_str("-plain"),
            }
        }
        if self.rescore_every > 0 && self.policy.is_score_based() && self.policy != PolicyArg::Kakurenbo {
            s.push_str(&format!("+rescore{}", self.rescore_every));
        }
        let warmup = self.warmup_epochs.unwrap_or(0);
        if warmup > 0 && self.policy != PolicyArg::Full && !self.policy.is_score_based() {
            s.push_str(&format!("+warmup{warmup}"));
        }
        if self.kakurenbo_lr == KakurenboLrArg::HiddenFraction {
            s.push_str(dynaprune::catalog::LR_HIDDEN_SUFFIX);
        }
        s
    }
}

/// The policy behind a method label written by [`TrainArgs::method_label`] (`ucb-plain+rescore2`
/// -> `ucb`), or `None` for a name that is no policy.
pub fn policy_of_method(method: &str) -> Option<PolicyArg> {
    let base = method.split('+').next().unwrap_or(method);
    let base = base.strip_suffix("-plain").or_else(|| base.strip_suffix("-bonus")).unwrap_or(base);
    PolicyArg::from_name(base)
}

/// Values for fields missing from a `config.json` written before they existed: what those runs
/// actually did (no staleness, no re-scoring), not today's defaults.
mod serde_defaults {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_rule_is_a_policy_flag_with_its_name_and_help() {
        let names: Vec<&str> = PolicyArg::ALL.iter().map(|p| p.as_str()).collect();
        let catalog: Vec<&str> = dynaprune::catalog::RULES.iter().map(|r| r.name).collect();
        assert_eq!(names, catalog, "one PolicyArg per catalog rule, in order");
        for p in PolicyArg::ALL {
            assert_eq!(PolicyArg::from_str(p.as_str(), false), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<PolicyArg>(&format!("\"{}\"", p.as_str())).unwrap(), p);
            let v = p.to_possible_value().unwrap();
            assert_eq!(v.get_help().map(|h| h.to_string()).as_deref(), Some(p.info().summary));
            assert_eq!(p.scorer().map(ScorerArg::as_str), p.info().scorer);
        }
        assert!(serde_json::from_str::<PolicyArg>("\"nope\"").is_err());
    }
}
