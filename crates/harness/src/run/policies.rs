//! Turns the pruning settings (and, for static rules, a score vector) into a [`Pruner`].

use anyhow::{bail, Context, Result};
use dynaprune::catalog::BufferKind;
use dynaprune::{
    EmaBuffer, EpsilonDecay, EpsilonGreedy, FullData, InfoBatch, Kakurenbo, LastValueBuffer, Policy, Pruner, Rs2,
    StaticRandom, StaticScores, Ucb, UniformRandom,
};

use crate::config::{PolicyArg, PruningSettings};
use crate::seeds;

/// The pruner for a run over `n` training samples from the run's root `seed`; `scores` are
/// required for static scorer policies.
pub fn build(args: &PruningSettings, seed: u64, n: usize, scores: Option<Vec<f32>>) -> Result<Pruner> {
    let pf = args.pruned_fraction();
    let policy: Box<dyn Policy> = match args.policy {
        PolicyArg::Full => Box::new(FullData),
        PolicyArg::StaticRandom => Box::new(StaticRandom::new(pf)?),
        PolicyArg::El2n | PolicyArg::Grand | PolicyArg::GrandLastLayer | PolicyArg::Forgetting => {
            let scores = scores.context("internal: a static policy needs scores")?;
            if scores.len() != n {
                bail!("the score file has {} scores but the training set has {n} samples", scores.len());
            }
            Box::new(StaticScores::new(scores, args.keep, pf)?.with_name(args.policy.as_str()))
        }
        PolicyArg::Random => Box::new(UniformRandom::new(pf)?),
        PolicyArg::EpsilonGreedy => {
            let mut p =
                EpsilonGreedy::builder().prune_fraction(pf).epsilon(args.epsilon).staleness(args.staleness).build()?;
            if args.epsilon_decay != 1.0 {
                p = p.with_decay(EpsilonDecay::Exponential { rate: args.epsilon_decay, min: 0.0 })?;
            }
            Box::new(p)
        }
        PolicyArg::Ucb => Box::new(Ucb::builder().prune_fraction(pf).c(args.ucb_c).staleness(args.staleness).build()?),
        PolicyArg::Rs2 => Box::new(Rs2::new(pf)?),
        PolicyArg::Kakurenbo => {
            Box::new(Kakurenbo::new(pf)?.with_tau(args.kakurenbo_tau)?.with_lr_rule(args.kakurenbo_lr.rule()))
        }
        PolicyArg::Infobatch => Box::new(InfoBatch::from_rate(args.infobatch)?),
        PolicyArg::Seta => Box::new(args.seta.policy(pf)?),
        PolicyArg::SelectiveBackprop => Box::new(args.selective_backprop.policy(pf)?),
    };
    let builder = Pruner::builder(n)
        .boxed_policy(policy)
        .schedule(args.schedule)
        .seed(seeds::derive(seed, seeds::PRUNER))
        .rescore_every(args.rescore_every);
    let pruner = match args.policy.info().buffer {
        BufferKind::LastValue => builder.buffer(LastValueBuffer::new(n)?).build()?,
        BufferKind::Ema => builder.buffer(EmaBuffer::new(n, args.ema_decay).context("--ema-decay")?).build()?,
    };
    Ok(pruner)
}

/// The per-batch selector of a batch-level rule (Selective-Backprop), drawing from the run's
/// root `seed`; `None` for the other rules.
pub fn selector(args: &PruningSettings, seed: u64) -> Result<Option<dynaprune::BackpropSelector>> {
    if !args.policy.info().batch_level {
        return Ok(None);
    }
    Ok(Some(args.selective_backprop.policy(args.pruned_fraction())?.selector(seeds::derive(seed, seeds::SELECTOR))))
}
