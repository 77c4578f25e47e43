"""dynaprune: dynamic data pruning for any training loop.

Train on fewer samples per epoch, chosen while training runs. The rules are the Rust crate
``dynaprune``; this package adds NumPy in and out and two helpers for PyTorch-style loops.
torch is optional: nothing here imports it unless you pass it a tensor.

    import dynaprune as dp
    pruner = dp.Pruner(len(train_set), dp.Ucb(0.5), dp.Schedule(epochs, warmup=1), seed=0)
    sampler = dp.PlanSampler(pruner)                       # a DataLoader sampler
    loader = DataLoader(dp.WithIndex(train_set), batch_size=128, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                           # plans the epoch
        for idx, x, y in loader:
            loss = sampler.loss(F.cross_entropy(model(x), y, reduction="none"), idx)
            loss.backward(); ...

Conventions: ``prune_fraction`` is always the fraction of samples *removed*; weighted losses are
``sum(w * l) / len(l)`` (InfoBatch's); one ``seed`` fixes every random choice and nothing global
is reseeded.
"""

from ._dynaprune import (  # noqa: F401
    BackpropSelector,
    EpsilonGreedy,
    FullData,
    InfoBatch,
    Kakurenbo,
    Plan,
    Policy,
    Pruner,
    Rs2,
    Schedule,
    SelectiveBackprop,
    Seta,
    Shard,
    Staleness,
    StaticRandom,
    StaticScores,
    Ucb,
    UniformRandom,
    __version__,
)
from ._loop import PlanSampler, WithIndex, weighted_mean  # noqa: F401

__all__ = [
    "BackpropSelector",
    "EpsilonGreedy",
    "FullData",
    "InfoBatch",
    "Kakurenbo",
    "Plan",
    "PlanSampler",
    "Policy",
    "Pruner",
    "Rs2",
    "Schedule",
    "SelectiveBackprop",
    "Seta",
    "Shard",
    "Staleness",
    "StaticRandom",
    "StaticScores",
    "Ucb",
    "UniformRandom",
    "WithIndex",
    "weighted_mean",
    "__version__",
]
