//! Turns the policy flags (and, for static rules, a score vector) into a [`Pruner`].

use anyhow::{bail, Context, Result};
use dynaprune::{
    EmaBuffer, EpsilonDecay, EpsilonGreedy, FullData, InfoBatch, InfoBatchRate, Keep, LastValueBuffer, Policy, Pruner,
    Schedule, StaticRandom, StaticScores, Ucb, UniformRandom,
};

use crate::config::{InfobatchMode, PolicyArg, TrainArgs};
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
    let pf = args.prune_fraction;
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
            let mut p = EpsilonGreedy::new(pf, args.epsilon)?;
            if args.epsilon_decay != 1.0 {
                p = p.with_decay(EpsilonDecay::Exponential { rate: args.epsilon_decay, min: 0.0 })?;
            }
            Box::new(p)
        }
        PolicyArg::Ucb => Box::new(Ucb::new(pf, args.ucb_c)?),
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
    let builder =
        Pruner::builder(n).boxed_policy(policy).schedule(schedule).seed(seeds::derive(args.seed, seeds::PRUNER));
    let pruner = if args.policy == PolicyArg::Infobatch {
        builder.buffer(LastValueBuffer::new(n)?).build()?
    } else {
        builder.buffer(EmaBuffer::new(n, args.ema_decay)?).build()?
    };
    Ok(pruner)
}
