//! The typed configuration of a run: what the flags mean, converted once at the edge
//! ([`TrainArgs::resolve`]) and handed to each part of the harness as the piece it needs. Nothing
//! below this point reads a flag.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use dynaprune::{EmaBuffer, EpsilonGreedy, InfoBatchRate, Keep, Schedule, Staleness};
use dynaprune_data::Augment;
use dynaprune_model::LrSchedule;

use super::flags::TrainArgs;
use super::values::{AugmentArg, BudgetArg, DatasetArg, InfobatchMode, PolicyArg, ScoreArg, StalenessArg};
use crate::progress::ProgressMode;

/// Everything a run needs, typed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which data, where, how much, how augmented.
    pub data: DataSettings,
    /// Which network.
    pub model: ModelSettings,
    /// SGD and the learning-rate schedule.
    pub optim: OptimSettings,
    /// The selection rule and its schedule.
    pub pruning: PruningSettings,
    /// Static scorers.
    pub scoring: ScoringSettings,
    /// Seed, device, output, resuming, evaluation and progress.
    pub run: RunSettings,
    /// The run's record: the flags with every derived default written in (`config.json`, the
    /// resume fingerprint). Read-only below the edge: nothing derives a setting from it.
    pub record: TrainArgs,
}

/// The data of a run.
#[derive(Debug, Clone)]
pub struct DataSettings {
    /// The dataset.
    pub dataset: DatasetArg,
    /// `--data-dir`, if given.
    pub dir: Option<PathBuf>,
    /// Keep only the first N training samples (0 = all).
    pub max_train_samples: usize,
    /// Keep only the first N test samples (0 = all).
    pub max_test_samples: usize,
    /// The training augmentation.
    pub augment: Augment,
}

/// The network of a run.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// A registered model name.
    pub name: String,
    /// Width multiplier.
    pub width: f64,
    /// Arithmetic of the convolutions (checked against the CPU by [`TrainArgs::resolve`]).
    pub precision: dynaprune_model::Precision,
    /// The kernels every network of the run is built with (`--kernels` and `--precision` on
    /// `--device`, checked against the CPU when the flags are resolved).
    pub kernels: dynaprune_model::Kernels,
}

/// The optimiser and schedule of a run.
#[derive(Debug, Clone)]
pub struct OptimSettings {
    /// Base learning rate.
    pub lr: f64,
    /// Momentum.
    pub momentum: f64,
    /// Nesterov momentum (only with momentum > 0).
    pub nesterov: bool,
    /// L2 weight decay (not on biases and normalisation).
    pub weight_decay: f64,
    /// Label smoothing of the training loss.
    pub label_smoothing: f64,
    /// Learning rate over training progress.
    pub schedule: LrSchedule,
    /// Training epochs (the schedule's length).
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
}

/// The selection rule of a run, every default resolved.
#[derive(Debug, Clone)]
pub struct PruningSettings {
    /// The rule.
    pub policy: PolicyArg,
    /// The rule as reports name it ([`TrainArgs::method_label`]: `ucb`, `ucb-plain`,
    /// `random+warmup1`, ...).
    pub method: String,
    /// The sample-pass budget.
    pub budget: BudgetArg,
    /// `--prune-fraction` (what the results are labelled with).
    pub prune_fraction: f64,
    /// The fraction each pruned epoch removes under the budget (`None` for full data).
    pub pruned_epoch_fraction: Option<f64>,
    /// Warm-up, re-selection interval and annealing.
    pub schedule: Schedule,
    /// Epsilon-greedy's exploration fraction.
    pub epsilon: f64,
    /// Epsilon's per-epoch decay (1 = constant).
    pub epsilon_decay: f64,
    /// UCB's weight on the standard deviation.
    pub ucb_c: f64,
    /// How UCB and epsilon-greedy age skipped samples.
    pub staleness: Staleness,
    /// The EMA decay of the score buffer.
    pub ema_decay: f64,
    /// Which per-sample value the rule observes.
    pub score: ScoreArg,
    /// InfoBatch's drop probability rule.
    pub infobatch: InfoBatchRate,
    /// KAKURENBO's confidence threshold.
    pub kakurenbo_tau: f64,
    /// KAKURENBO's learning-rate rule.
    pub kakurenbo_lr: super::values::KakurenboLrArg,
    /// SeTa's knobs.
    pub seta: SetaSettings,
    /// Selective-Backprop's knobs.
    pub selective_backprop: SbSettings,
    /// Forward-only re-scoring interval (0 = off).
    pub rescore_every: usize,
    /// Static rules: which part of the ranking to keep.
    pub keep: Keep,
}

impl PruningSettings {
    /// The fraction each pruned epoch removes: `--prune-fraction` itself under the nominal
    /// budget, more under the matched budget when warm-up or annealing epochs spend part of it.
    pub fn pruned_fraction(&self) -> f64 {
        self.pruned_epoch_fraction.unwrap_or(self.prune_fraction)
    }
}

/// SeTa's knobs (checked by [`super::TrainArgs::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetaSettings {
    /// Loss groups.
    pub groups: usize,
    /// Window scale.
    pub window_scale: f64,
    /// Annealing point.
    pub delta: f64,
    /// Exact or reference budget.
    pub budget: dynaprune::SetaBudget,
}

impl SetaSettings {
    /// The policy removing `prune_fraction` per pruned epoch.
    pub fn policy(&self, prune_fraction: f64) -> dynaprune::Result<dynaprune::Seta> {
        Ok(dynaprune::Seta::new(prune_fraction)?
            .with_groups(self.groups)?
            .with_window_scale(self.window_scale)?
            .with_delta(self.delta)?
            .with_budget(self.budget))
    }
}

/// Selective-Backprop's knobs (checked by [`super::TrainArgs::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SbSettings {
    /// The exponent; `None`: from the pruned-epoch fraction.
    pub beta: Option<f64>,
    /// History length.
    pub history: usize,
    /// Smallest keep probability.
    pub floor: f64,
}

impl SbSettings {
    /// The rule removing `prune_fraction` of the passes in expectation (unless `--sb-beta` says
    /// otherwise).
    pub fn policy(&self, prune_fraction: f64) -> dynaprune::Result<dynaprune::SelectiveBackprop> {
        let rule = match self.beta {
            Some(b) => dynaprune::SelectiveBackprop::new(b)?,
            None => dynaprune::SelectiveBackprop::for_prune_fraction(prune_fraction)?,
        };
        rule.with_history(self.history)?.with_floor(self.floor)
    }
}

/// Static scoring.
#[derive(Debug, Clone)]
pub struct ScoringSettings {
    /// A score file to reuse (`--scores`).
    pub file: Option<PathBuf>,
    /// Models (EL2N) or initialisations (GraNd) averaged.
    pub models: usize,
    /// EL2N's training epochs per model.
    pub el2n_epochs: usize,
    /// Forgetting's full-data epochs.
    pub forgetting_epochs: usize,
}

/// The run itself.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The root seed: weights, data order, augmentation, selections.
    pub seed: u64,
    /// The device.
    pub device: Device,
    /// The output directory.
    pub out: PathBuf,
    /// Continue an interrupted run.
    pub resume: bool,
    /// Evaluate every N epochs (and after the last).
    pub eval_every: usize,
    /// Stop after this many epochs of this invocation.
    pub stop_after: Option<usize>,
    /// Progress display.
    pub progress: ProgressMode,
}

/// The staleness model the flags ask for.
pub fn staleness(args: &TrainArgs) -> Result<Staleness> {
    Ok(match args.staleness {
        StalenessArg::Off => Staleness::Off,
        StalenessArg::Prior => Staleness::prior(args.staleness_retention, args.staleness_drift)
            .context("--staleness-retention / --staleness-drift")?,
        StalenessArg::CountBonus => Staleness::count_bonus(args.staleness_bonus).context("--staleness-bonus")?,
    })
}

/// The EMA decay the chosen rule is tuned for ([`dynaprune::Policy::preferred_ema_decay`]),
/// used when `--ema-decay` is not given.
pub fn preferred_ema_decay(args: &TrainArgs) -> Result<f64> {
    use dynaprune::Policy as _;
    Ok(match args.policy {
        PolicyArg::EpsilonGreedy => EpsilonGreedy::builder()
            .prune_fraction(args.prune_fraction)
            .epsilon(args.epsilon)
            .build()?
            .with_staleness(staleness(args)?)?
            .preferred_ema_decay(),
        _ => EmaBuffer::DEFAULT_DECAY,
    })
}

/// Parses `--static-keep`.
pub fn parse_keep(s: &str) -> Result<Keep> {
    Ok(match s {
        "highest" => Keep::Highest,
        "lowest" => Keep::Lowest,
        other => match other.strip_prefix("window:") {
            Some(f) => Keep::Window {
                skip_fraction: f
                    .parse()
                    .with_context(|| format!("--static-keep {other}: expected window:<fraction>"))?,
            },
            None => bail!("--static-keep must be highest, lowest or window:<fraction>, got `{other}`"),
        },
    })
}

/// The augmentation `--augment` means for the dataset.
pub fn augment(arg: AugmentArg, dataset: DatasetArg) -> Augment {
    match arg {
        AugmentArg::None => Augment::NONE,
        AugmentArg::Light => Augment::LIGHT,
        AugmentArg::Cifar => Augment::CIFAR,
        AugmentArg::Default => match dataset {
            DatasetArg::Cifar10 | DatasetArg::Cifar100 => Augment::CIFAR,
            _ => Augment::NONE,
        },
    }
}

impl Settings {
    /// The typed form of `args`, whose defaults [`TrainArgs::resolve`] has filled.
    pub(super) fn from_resolved(args: TrainArgs) -> Result<Self> {
        let pruning = PruningSettings::from_resolved(&args)?;
        let device =
            dynaprune_model::device::parse(&args.device).with_context(|| format!("--device {}", args.device))?;
        // Refused here, before anything is written: bf16 on a CPU without AVX512_BF16, an
        // instruction set this CPU cannot run, CPU kernels on a GPU.
        let kernels = args.kernels.kernels(&device, args.precision.precision())?;
        Ok(Self {
            data: DataSettings {
                dataset: args.dataset,
                dir: args.data_dir.clone(),
                max_train_samples: args.max_train_samples,
                max_test_samples: args.max_test_samples,
                augment: augment(args.augment, args.dataset),
            },
            model: ModelSettings {
                name: args.model.clone(),
                width: args.width,
                precision: args.precision.precision(),
                kernels,
            },
            optim: OptimSettings {
                lr: args.lr,
                momentum: args.momentum,
                nesterov: !args.no_nesterov && args.momentum > 0.0,
                weight_decay: args.weight_decay,
                label_smoothing: args.label_smoothing,
                schedule: LrSchedule::parse(&args.schedule).context("--schedule")?,
                epochs: args.epochs,
                batch_size: args.batch_size,
            },
            pruning,
            scoring: ScoringSettings {
                file: args.scores.clone(),
                models: args.scorer_models,
                el2n_epochs: args.el2n_epochs.context("internal: --el2n-epochs is resolved first")?,
                forgetting_epochs: args.forgetting_epochs.context("internal: --forgetting-epochs is resolved first")?,
            },
            run: RunSettings {
                seed: args.seed,
                device,
                out: args.out.clone(),
                resume: args.resume,
                eval_every: args.eval_every,
                stop_after: args.stop_after,
                progress: ProgressMode::parse(&args.progress)?,
            },
            record: args,
        })
    }
}

impl PruningSettings {
    /// The pruning part of [`Settings::from_resolved`].
    fn from_resolved(args: &TrainArgs) -> Result<Self> {
        Ok(PruningSettings {
            policy: args.policy,
            method: args.method_label(),
            budget: args.budget,
            prune_fraction: args.prune_fraction,
            pruned_epoch_fraction: args.pruned_epoch_fraction,
            schedule: Schedule::new(args.epochs)
                .warmup(args.warmup_epochs.unwrap_or(0))
                .interval(args.selection_interval)
                .anneal(args.anneal_epochs.unwrap_or(0)),
            epsilon: args.epsilon,
            epsilon_decay: args.epsilon_decay,
            ucb_c: args.ucb_c,
            staleness: staleness(args)?,
            ema_decay: args.ema_decay.context("internal: --ema-decay is resolved first")?,
            score: args.score,
            infobatch: match args.infobatch_mode {
                InfobatchMode::Target => InfoBatchRate::TargetPruneFraction {
                    prune_fraction: args.pruned_epoch_fraction.unwrap_or(args.prune_fraction),
                    max_drop_probability: args.infobatch_max_r,
                },
                InfobatchMode::DropProb => {
                    InfoBatchRate::DropProbability(args.pruned_epoch_fraction.unwrap_or(args.prune_fraction))
                }
            },
            kakurenbo_tau: args.kakurenbo_tau,
            kakurenbo_lr: args.kakurenbo_lr,
            seta: SetaSettings {
                groups: args.seta_groups,
                window_scale: args.seta_window_scale,
                delta: args.seta_delta,
                budget: args.seta_budget.rule(),
            },
            selective_backprop: SbSettings { beta: args.sb_beta, history: args.sb_history, floor: args.sb_floor },
            rescore_every: args.rescore_every,
            keep: parse_keep(&args.static_keep)?,
        })
    }
}
