"""Same seed, same plans, from Rust and from Python.

``golden/plans.json`` is written by the Rust crate (``crates/pruning/tests/python_parity.rs``,
which also checks that the crate still produces it byte for byte). Here the same script runs
through the bindings: every plan's indices, weights and learning-rate factor, and the final
selection counts, must be identical.
"""

import json
import pathlib

import numpy as np
import pytest

import dynaprune as dp

GOLDEN = json.loads((pathlib.Path(__file__).parent / "golden" / "plans.json").read_text())
N, EPOCHS, SEED, BATCH = GOLDEN["n"], GOLDEN["epochs"], GOLDEN["seed"], GOLDEN["batch"]


def loss(idx, e):
    # ((i * 37 + e * 101 + 13) % 97) as f32 / 10.0, exactly as in Rust
    return ((idx * 37 + e * 101 + 13) % 97).astype(np.float32) / np.float32(10.0)


def cases():
    s = dp.Schedule(EPOCHS, warmup=1)
    scores = ((np.arange(N) * 7919) % 1000).astype(np.float32) / np.float32(1000.0)
    return {
        "full": (dp.FullData(), s),
        "random": (dp.UniformRandom(0.5), s),
        "epsilon-greedy": (dp.EpsilonGreedy(0.5, 0.2), s),
        "epsilon-greedy-plain": (dp.EpsilonGreedy(0.5, 0.2, staleness="off"), s),
        "ucb": (dp.Ucb(0.5, 1.0), s),
        "ucb-count-bonus": (dp.Ucb(0.3, 1.0, staleness=dp.Staleness.count_bonus(0.5)), s),
        "infobatch": (dp.InfoBatch(0.5), dp.Schedule(EPOCHS, warmup=1, anneal=1)),
        "infobatch-target": (dp.InfoBatch(prune_fraction=0.3, max_drop_probability=0.9), s),
        "rs2": (dp.Rs2(0.7), s),
        "kakurenbo": (dp.Kakurenbo(0.3), s),
        "seta": (dp.Seta(0.5), s),
        "seta-reference": (dp.Seta(0.2, groups=4, window_scale=0.5, delta=0.8, budget="reference"), s),
        "static-scores": (dp.StaticScores(scores, 0.5), s),
        "static-random": (dp.StaticRandom(0.4), s),
    }


def test_golden_covers_every_case():
    assert sorted(GOLDEN["runs"]) == sorted(cases())


@pytest.mark.parametrize("name", sorted(GOLDEN["runs"]))
def test_same_seed_same_plans_as_rust(name):
    policy, schedule = cases()[name]
    p = dp.Pruner(N, policy, schedule, seed=SEED)
    want = GOLDEN["runs"][name]
    for e in range(EPOCHS):
        plan = p.plan(e)
        g = want["plans"][e]
        assert plan.phase == g["phase"]
        assert plan.lr_factor == g["lr_factor"]
        assert plan.indices.dtype == np.int64
        np.testing.assert_array_equal(plan.indices, np.array(g["indices"], dtype=np.int64))
        if g["weights"] is None:
            assert plan.weights is None
        else:
            assert plan.weights.dtype == np.float32
            # exact: each f32 weight, widened to f64, equals the value Rust wrote
            assert plan.weights.astype(np.float64).tolist() == g["weights"]
        for idx, _w in plan.batches(BATCH):
            l = loss(idx, e)
            if name == "kakurenbo":
                correct = idx % 3 != 0
                conf = ((idx * 13) % 50 + 50).astype(np.float32) / np.float32(100.0)
                p.observe_predictions(idx, l, correct, conf)
            else:
                p.observe(idx, l)
    np.testing.assert_array_equal(p.selection_counts(), np.array(want["selection_counts"], dtype=np.uint32))
