//! Turns the policy flags (and, for static rules, a score vector) into a [`Pruner`].

use anyhow::{bail, Context, Result};
use dynaprune::catalog::BufferKind;
use dynaprune::{
    EmaBuffer, EpsilonDecay, EpsilonGreedy, FullData, InfoBatch, InfoBatchRate, Kakurenbo, Keep, LastValueBuffer,
    Policy, Pruner, Rs2, Schedule, Staleness, StaticRandom, StaticScores, Ucb, UniformRandom,
};

use crate::config::{InfobatchMode, PolicyArg, StalenessArg, TrainArgs};

/// The EMA decay the chosen rule is tuned for ([`Policy::preferred_ema_decay`]), used when
/// `--ema-decay` is not given.
pub fn preferred_ema_decay(args: &TrainArgs) -> Result<f64> {
    Ok(match args.policy {
        PolicyArg::EpsilonGreedy => EpsilonGreedy::new(args.prune_fraction, args.epsilon)?
            .with_staleness(staleness(args)?)?
            .preferred_ema_decay(),
        _ => EmaBuffer::DEFAULT_DECAY,
    })
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
use crate::seeds;

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

/// The pruner for a run over `n` training samples; `scores` are required for static scorer
/// policies.
pub fn build(args: &TrainArgs, n: usize, scores: Option<Vec<f32>>) -> Result<Pruner> {
    // The fraction each pruned epoch removes: --prune-fraction itself under the nominal budget,
    // more under the matched budget when warm-up or annealing epochs spend part of it.
    let pf = args.pruned_epoch_fraction.unwrap_or(args.prune_fraction);
    let policy: Box<dyn Policy> = match args.policy {
        PolicyArg::Full => Box::new(FullData),
        PolicyArg::StaticRandom => Box::new(StaticRandom::new(pf)?),
        PolicyArg::El2n | PolicyArg::Grand | PolicyArg::GrandLastLayer | PolicyArg::Forgetting => {
            let scores = scores.context("internal: a static policy needs scores")?;
            if scores.len() != n {
                bail!("the score file has {} scores but the training set has {n} samples", scores.len());
            }
            Box::new(StaticScores::new(scores, parse_keep(&args.static_keep)?, pf)?.with_name(args.policy.as_str()))
        }
        PolicyArg::Random => Box::new(UniformRandom::new(pf)?),
        PolicyArg::EpsilonGreedy => {
            let mut p = EpsilonGreedy::new(pf, args.epsilon)?.with_staleness(staleness(args)?)?;
            if args.epsilon_decay != 1.0 {
                p = p.with_decay(EpsilonDecay::Exponential { rate: args.epsilon_decay, min: 0.0 })?;
            }
            Box::new(p)
        }
        PolicyArg::Ucb => Box::new(Ucb::new(pf, args.ucb_c)?.with_staleness(staleness(args)?)?),
        PolicyArg::Rs2 => Box::new(Rs2::new(pf)?),
        PolicyArg::Kakurenbo => Box::new(Kakurenbo::new(pf)?.with_tau(args.kakurenbo_tau)?),
        PolicyArg::Infobatch => Box::new(InfoBatch::with_rate(match args.infobatch_mode {
            InfobatchMode::Target => {
                InfoBatchRate::TargetPruneFraction { prune_fraction: pf, max_drop_probability: args.infobatch_max_r }
            }
            InfobatchMode::DropProb => InfoBatchRate::DropProbability(pf),
        })?),
    };
    let schedule = Schedule::new(args.epochs)
        .warmup(args.warmup_epochs.unwrap_or(0))
        .interval(args.selection_interval)
        .anneal(args.anneal_epochs.unwrap_or(0));
    let builder = Pruner::builder(n)
        .boxed_policy(policy)
        .schedule(schedule)
        .seed(seeds::derive(args.seed, seeds::PRUNER))
        .rescore_every(args.rescore_every);
    let pruner = match args.policy.info().buffer {
        BufferKind::LastValue => builder.buffer(LastValueBuffer::new(n)?).build()?,
        BufferKind::Ema => {
            let decay = args.ema_decay.context("internal: --ema-decay is resolved before the pruner is built")?;
            builder.buffer(EmaBuffer::new(n, decay).context("--ema-decay")?).build()?
        }
    };
    Ok(pruner)
}
