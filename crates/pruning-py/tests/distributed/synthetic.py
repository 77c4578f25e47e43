"""Deterministic synthetic observations shared by the distributed tests' ranks and the
single-process reference they are compared with: a function of (sample index, epoch) only."""

import numpy as np

import dynaprune as dp


def synthetic_losses(idx, epoch):
    idx = np.asarray(idx, dtype=np.uint64)
    h = (idx * np.uint64(2654435761) + np.uint64(epoch) * np.uint64(40503)) % np.uint64(1000)
    return (h.astype(np.float32) / np.float32(100.0)) + np.float32(0.01)


def synthetic_predictions(idx, epoch, classes=10):
    idx = np.asarray(idx, dtype=np.int64)
    logits = np.sin(np.outer(idx + 1, np.arange(1, classes + 1)) * 0.37 + epoch).astype(np.float32) * 3
    targets = (idx * 7 + epoch) % classes
    return logits, targets.astype(np.int64)


def make_pruner(policy, n, epochs, seed):
    s = dp.Schedule(epochs, warmup=1)
    rule = {
        "ucb": lambda: dp.Ucb(s.budget_matched_fraction(0.5)),
        "infobatch": lambda: dp.InfoBatch(prune_fraction=0.5),
        "kakurenbo": lambda: dp.Kakurenbo(0.3),
        "full": lambda: dp.FullData(),
    }[policy]()
    return dp.Pruner(n, rule, s, seed=seed)
