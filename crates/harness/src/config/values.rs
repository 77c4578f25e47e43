//! The values of `dynaprune train`'s flags: one enum per flag with a fixed set of choices, each
//! with its name on the command line and in `config.json`. The rules' enum, [`PolicyArg`], takes
//! its variants' facts from [`dynaprune::catalog`].

use clap::ValueEnum;
use dynaprune::catalog::RuleInfo;
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

/// Declares [`PolicyArg`], one variant per rule of the catalog, with [`PolicyArg::ALL`] and
/// [`PolicyArg::info`] from the same single list (a rule's facts, its name included, stay in
/// [`dynaprune::catalog`]).
macro_rules! policy_args {
    ($($variant:ident => $rule:ident,)+) => {
        /// Every selection rule the harness can run: one variant per rule of
        /// [`dynaprune::catalog::RULES`], whose facts (name, help, static or dynamic, scorer,
        /// defaults) it reads from there.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub enum PolicyArg {
            $(
                #[doc = concat!("[`dynaprune::catalog::", stringify!($rule), "`].")]
                $variant,
            )+
        }

        impl PolicyArg {
            /// Every rule, in the catalog's order.
            pub const ALL: [PolicyArg; dynaprune::catalog::RULES.len()] = [$(PolicyArg::$variant),+];

            /// The rule's facts.
            pub fn info(self) -> &'static RuleInfo {
                match self {
                    $(PolicyArg::$variant => &dynaprune::catalog::$rule,)+
                }
            }
        }
    };
}

policy_args! {
    Full => FULL,
    StaticRandom => STATIC_RANDOM,
    El2n => EL2N,
    Grand => GRAND,
    GrandLastLayer => GRAND_LAST_LAYER,
    Forgetting => FORGETTING,
    Random => RANDOM,
    EpsilonGreedy => EPSILON_GREEDY,
    Ucb => UCB,
    Infobatch => INFOBATCH,
    Rs2 => RS2,
    Kakurenbo => KAKURENBO,
    Seta => SETA,
    SelectiveBackprop => SELECTIVE_BACKPROP,
}

impl PolicyArg {
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

/// The CPU convolution kernels (`--kernels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelsArg {
    /// im2col + GEMM (default; every committed result).
    #[default]
    Im2col,
    /// Direct NHWC convolutions with BatchNorm fused, on this CPU's fastest instruction set.
    Direct,
    /// The direct kernels forced onto AVX-512.
    DirectAvx512,
    /// The direct kernels forced onto AVX2 + FMA.
    DirectAvx2,
    /// The direct kernels in portable Rust.
    DirectPortable,
}

impl KernelsArg {
    /// Not written into config.json when im2col, so runs keep the config (and resume
    /// fingerprint) they had before the flag existed.
    pub fn is_im2col(&self) -> bool {
        *self == KernelsArg::Im2col
    }

    /// The model crate's kernels for `device` in `precision`: on a GPU, Candle's (only the
    /// default is accepted there); refused, naming the CPU's features, where this CPU cannot run
    /// the instruction set, or for bf16 with the direct kernels.
    pub fn kernels(
        self,
        device: &candle_core::Device,
        precision: dynaprune_model::Precision,
    ) -> anyhow::Result<dynaprune_model::Kernels> {
        use anyhow::Context;
        let name = self.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        if !device.is_cpu() {
            anyhow::ensure!(
                self.is_im2col(),
                "--kernels {name}: CPU kernels, but the device is a GPU (it runs Candle's)"
            );
            return dynaprune_model::Kernels::for_device(device).with_precision(precision).context("--precision");
        }
        let k = dynaprune_model::Kernels::from_name(&name).with_context(|| format!("--kernels {name}"))?;
        k.with_precision(precision).with_context(|| format!("--kernels {name} with --precision {precision:?}"))
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
            BudgetArg::Matched => dynaprune::catalog::BUDGET_MATCHED,
            BudgetArg::Nominal => dynaprune::catalog::BUDGET_NOMINAL,
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
