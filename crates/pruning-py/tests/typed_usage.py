"""A training loop's use of dynaprune, type-checked with `mypy --strict` through the shipped stubs
(scripts/python-check.sh). Not a pytest module: it runs as a script, and its value is that it
type-checks. A stub that loses a class, an argument or a return type breaks it."""

from __future__ import annotations

from typing import Optional

import numpy as np
import numpy.typing as npt

import dynaprune as dp


def fake_losses(indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    return (indices % 7).astype(np.float32)


def train(n: int = 1_000, epochs: int = 4) -> int:
    policy: dp.Policy = dp.Ucb(0.5, c=dp.Ucb.DEFAULT_C, staleness=dp.Staleness.prior())
    pruner = dp.Pruner(n, policy, dp.Schedule(epochs, warmup=1), seed=0)
    passes = 0
    for epoch in range(epochs):
        plan: dp.Plan = pruner.plan(epoch)
        lr: float = plan.lr_factor
        assert lr > 0
        for idx, w in plan.batches(128):
            weights: Optional[npt.NDArray[np.float32]] = w
            assert weights is None or len(weights) == len(idx)
            pruner.observe(idx, fake_losses(idx))
            passes += len(idx)
        shard: dp.Shard = plan.shard(0, 2)
        assert shard.own + shard.padding == len(shard.indices)
    counts: npt.NDArray[np.uint32] = pruner.selection_counts()
    assert int(counts.sum()) == passes
    state: bytes = pruner.state()
    again = dp.Pruner(n, dp.Ucb(0.5), dp.Schedule(epochs, warmup=1), seed=0)
    again.restore(state)
    for rule in (
        dp.EpsilonGreedy(0.5, 0.2),
        dp.InfoBatch(prune_fraction=0.3),
        dp.InfoBatch(0.5),
        dp.Rs2(0.5),
        dp.Kakurenbo(0.3),
        dp.Seta(0.5, groups=dp.Seta.DEFAULT_GROUPS),
        dp.StaticRandom(0.5),
        dp.UniformRandom(0.5),
        dp.FullData(),
    ):
        name: str = rule.name
        assert name
    sb = dp.SelectiveBackprop(0.5)
    selector: dp.BackpropSelector = sb.selector(0)
    kept: npt.NDArray[np.int64] = selector.select(np.linspace(0.1, 2.0, 64, dtype=np.float32))
    return passes + len(kept)


if __name__ == "__main__":
    print(train())
