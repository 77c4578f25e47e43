"""The bindings' behaviour: every rule, state round trips, NaN safety, and every kind of bad
input raising a clear exception (never a panic or an abort)."""

import subprocess
import sys

import numpy as np
import pytest

import dynaprune as dp

N = 500


def all_policies():
    scores = np.linspace(0.0, 1.0, N, dtype=np.float32)
    return [
        dp.FullData(),
        dp.UniformRandom(0.5),
        dp.EpsilonGreedy(0.5),
        dp.EpsilonGreedy(0.5, 0.1, epsilon_decay_rate=0.9, epsilon_min=0.05, statistic="last"),
        dp.EpsilonGreedy(0.5, 0.3, epsilon_to=0.0),
        dp.Ucb(0.5),
        dp.Ucb(0.5, 2.0, staleness=dp.Staleness.prior(0.7, 0.2)),
        dp.Ucb(0.5, staleness=dp.Staleness.off()),
        dp.InfoBatch(),
        dp.InfoBatch(prune_fraction=0.4),
        dp.Rs2(0.5),
        dp.Kakurenbo(0.3, tau=0.6),
        dp.Seta(0.5),
        dp.Seta(0.3, groups=10, window_scale=0.5, delta=0.8, budget="reference"),
        dp.SelectiveBackprop(0.5),
        dp.StaticScores(scores, 0.5),
        dp.StaticScores(scores, 0.5, keep="lowest"),
        dp.StaticScores(scores, 0.5, keep="window", skip_fraction=0.1, name="el2n"),
        dp.StaticRandom(0.5),
    ]


def run(pruner, epochs, rng, kakurenbo=False):
    plans = []
    for e in range(epochs):
        plan = pruner.plan(e)
        plans.append(plan)
        for idx, w in plan.batches(64):
            losses = rng.random(len(idx), dtype=np.float32) + 0.01
            if kakurenbo:
                pruner.observe_predictions(idx, losses, rng.random(len(idx)) < 0.8, rng.uniform(0.3, 1.0, len(idx)).astype(np.float32))
            else:
                pruner.observe(idx, losses)
            if w is not None:
                assert len(w) == len(idx)
    return plans


@pytest.mark.parametrize("policy", all_policies(), ids=repr)
def test_every_policy_plans_valid_epochs(policy):
    assert isinstance(policy, dp.Policy)
    p = dp.Pruner(N, policy, dp.Schedule(5, warmup=1), seed=3)
    plans = run(p, 5, np.random.default_rng(0), kakurenbo=policy.name == "kakurenbo")
    assert plans[0].phase in ("warmup", "full") and len(plans[0]) == N
    for plan in plans:
        idx = plan.indices
        assert idx.dtype == np.int64 and len(np.unique(idx)) == len(idx)
        assert idx.min() >= 0 and idx.max() < N
        assert plan.stats["kept"] == len(plan)
        if policy.name in ("random", "ucb", "epsilon-greedy", "rs2", "static-random") and plan.phase == "select":
            assert len(plan) == 250, "hard rules keep exactly round((1 - f) n)"
    counts = p.selection_counts()
    assert counts.dtype == np.uint32 and counts.sum() == sum(len(pl) for pl in plans)
    assert p.epochs_planned == 5 and p.last_epoch == 4


def test_dynamic_rules_change_their_subset():
    p = dp.Pruner(N, dp.Ucb(0.5), dp.Schedule(6, warmup=1), seed=1)
    plans = run(p, 6, np.random.default_rng(1))
    overlaps = [pl.stats["overlap_with_previous"] for pl in plans[2:]]
    assert max(overlaps) < 1.0
    assert (p.pruned_selection_counts() == 0).sum() < N // 4


def test_same_seed_same_plans_different_seed_different_plans():
    def idx(seed):
        p = dp.Pruner(N, dp.UniformRandom(0.5), 3, seed=seed)
        return [p.plan(e).indices.tolist() for e in range(3)]

    assert idx(7) == idx(7)
    assert idx(7) != idx(8)


def test_no_global_random_state_is_touched():
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    p = dp.Pruner(N, dp.InfoBatch(), 3, seed=0)
    run(p, 3, np.random.default_rng(0))
    assert np.random.random() == before


def test_state_round_trip_resumes_exactly():
    a = dp.Pruner(N, dp.EpsilonGreedy(0.4), dp.Schedule(6, warmup=1), seed=9)
    run(a, 3, np.random.default_rng(5))
    blob = a.state()
    assert isinstance(blob, bytes)
    b = dp.Pruner(N, dp.EpsilonGreedy(0.4), dp.Schedule(6, warmup=1), seed=9)
    b.restore(blob)
    assert b.last_epoch == 2
    for e in range(3, 6):
        pa, pb = a.plan(e), b.plan(e)
        np.testing.assert_array_equal(pa.indices, pb.indices)
        losses = np.random.default_rng(e).random(N, dtype=np.float32)
        a.observe(pa.indices, losses[pa.indices])
        b.observe(pb.indices, losses[pb.indices])
    np.testing.assert_array_equal(a.selection_counts(), b.selection_counts())


def test_nan_loss_is_rejected_and_records_nothing():
    p = dp.Pruner(N, dp.Ucb(0.5), dp.Schedule(3, warmup=1), seed=0)
    p.plan(0)
    before = p.state()
    losses = np.ones(10, dtype=np.float32)
    losses[4] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        p.observe(np.arange(10), losses)
    with pytest.raises(ValueError, match="not finite"):
        p.observe(np.arange(2), np.array([1.0, np.inf]))
    assert p.state() == before


def test_float64_losses_lists_and_int32_indices_are_accepted():
    p = dp.Pruner(N, dp.Ucb(0.5), 2, seed=0)
    p.plan(0)
    p.observe(np.arange(5, dtype=np.int32), np.ones(5))  # float64 converted
    p.observe([5, 6], [0.5, 0.25])  # lists go through numpy.asarray
    p.observe(np.arange(7, 9, dtype=np.uint64), np.ones(2, dtype=np.float32))
    p.observe(np.array([], dtype=np.int64), np.array([], dtype=np.float32))


def test_weighted_mean_convention():
    l = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    assert dp.weighted_mean(l) == pytest.approx(2.5)
    assert dp.weighted_mean(l, np.array([2.0, 2.0, 0.0, 0.0])) == pytest.approx((2 + 4) / 4)
    with pytest.raises(ValueError, match="weights"):
        dp.weighted_mean(l, np.ones(3))


def test_sampler_without_torch():
    ds = [(float(i), i % 10) for i in range(N)]
    wrapped = dp.WithIndex(ds)
    assert wrapped[3] == (3, 3.0, 3) and len(wrapped) == N
    sampler = dp.PlanSampler(dp.Pruner(N, dp.InfoBatch(0.5), dp.Schedule(4, warmup=1), seed=0))
    with pytest.raises(RuntimeError, match="set_epoch"):
        iter(sampler)
    rng = np.random.default_rng(0)
    for e in range(4):
        plan = sampler.set_epoch(e)
        order = list(sampler)
        assert order == plan.indices.tolist() and len(sampler) == len(plan)
        for k in range(0, len(order), 50):
            idx = np.array(order[k : k + 50])
            losses = rng.random(len(idx), dtype=np.float32)
            w = sampler.weights_for(idx)
            loss = sampler.loss(losses, idx)
            want = (losses * (w if w is not None else 1.0)).sum() / len(idx)
            assert loss == pytest.approx(want)
        if e >= 2:
            assert plan.weights is not None, "InfoBatch weights its survivors once scores exist"


def test_sampler_feeds_kakurenbo_predictions():
    p = dp.Pruner(N, dp.Kakurenbo(0.3), dp.Schedule(4, warmup=1), seed=0)
    sampler = dp.PlanSampler(p)
    rng = np.random.default_rng(0)
    hidden = []
    for e in range(4):
        sampler.set_epoch(e)
        idx = np.array(list(sampler))
        logits = rng.normal(size=(len(idx), 10))
        targets = logits.argmax(axis=1)  # confident and right: candidates for hiding
        logits[np.arange(len(idx)), targets] += 5
        sampler.loss(rng.random(len(idx), dtype=np.float32), idx, logits=logits, targets=targets)
        hidden.append(N - len(idx))
    assert max(hidden) > 0 and sampler.lr_factor > 1.0
    with pytest.raises(ValueError, match="both"):
        sampler.observe(np.ones(2, dtype=np.float32), np.arange(2), logits=np.zeros((2, 3)))


def test_torch_is_optional():
    code = "import sys, dynaprune; assert 'torch' not in sys.modules; print(dynaprune.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------- bad input


@pytest.fixture
def pruner():
    p = dp.Pruner(N, dp.Ucb(0.5), dp.Schedule(3, warmup=1), seed=0)
    p.plan(0)
    return p


def test_wrong_dtypes(pruner):
    with pytest.raises(ValueError, match=r"`indices`: expected an integer array .* float64"):
        pruner.observe(np.arange(3, dtype=np.float64), np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"`losses`: expected a float32 or float64 array, got dtype int64"):
        pruner.observe(np.arange(3), np.arange(3))
    with pytest.raises(ValueError, match=r"`correct`: expected a bool array"):
        pruner.observe_predictions(np.arange(3), np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="`losses`: expected a float32 or float64 array, got dtype object"):
        pruner.observe(np.arange(2), ["a", object()])
    with pytest.raises(ValueError, match="`losses`: cannot be read as an array"):
        pruner.observe(np.arange(2), [[1.0], [2.0, 3.0]])


def test_strided_input_is_copied_and_multidimensional_refused():
    # A strided view (idx[rank::world], as one strides a plan by rank by hand) is copied once and
    # recorded exactly as its contiguous copy would be.
    a = dp.Pruner(10, dp.Ucb(0.5), dp.Schedule(3), seed=0)
    b = dp.Pruner(10, dp.Ucb(0.5), dp.Schedule(3), seed=0)
    a.plan(0), b.plan(0)
    idx, losses = np.arange(10)[::2], (np.arange(20, dtype=np.float32) / 7)[::4]
    a.observe(idx, losses)
    b.observe(np.ascontiguousarray(idx), np.ascontiguousarray(losses))
    assert a.state() == b.state()
    with pytest.raises(ValueError, match=r"1-D array, got shape \[2, 2\]"):
        a.observe(np.arange(4).reshape(2, 2), np.ones(4, dtype=np.float32))


def test_mismatched_lengths(pruner):
    with pytest.raises(ValueError, match="3 sample indices but 2 values"):
        pruner.observe(np.arange(3), np.ones(2, dtype=np.float32))
    with pytest.raises(ValueError, match="one of each per index"):
        pruner.observe_predictions(np.arange(3), np.ones(3), np.ones(2, dtype=bool), np.ones(3))


def test_out_of_range_and_negative_indices(pruner):
    with pytest.raises(ValueError, match="index 500 is out of range"):
        pruner.observe(np.array([1, 500]), np.ones(2, dtype=np.float32))
    with pytest.raises(ValueError, match="index -1 at position 1 is negative"):
        pruner.observe(np.array([1, -1]), np.ones(2, dtype=np.float32))
    with pytest.raises(ValueError, match="epoch 3 is outside the schedule"):
        pruner.plan(3)
    with pytest.raises(ValueError, match="not a probability"):
        pruner.observe_predictions(np.arange(2), np.ones(2), np.ones(2, dtype=bool), np.array([0.5, 1.5]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: dp.Ucb(-0.1), r"invalid `prune_fraction` = -0.1"),
        (lambda: dp.Ucb(float("nan")), r"invalid `prune_fraction` = NaN"),
        (lambda: dp.Ucb(1.0), r"expected a value in \[0, 1\)"),
        (lambda: dp.Ucb(0.5, -1.0), r"invalid `ucb_c`"),
        (lambda: dp.EpsilonGreedy(0.5, 1.5), r"invalid `epsilon`"),
        (lambda: dp.EpsilonGreedy(0.5, epsilon_decay_rate=0.9, epsilon_to=0.0), "not both"),
        (lambda: dp.EpsilonGreedy(0.5, statistic="median"), "expected \"mean\" or \"last\""),
        (lambda: dp.Ucb(0.5, staleness="sometimes"), "unknown `sometimes`"),
        (lambda: dp.Staleness.prior(1.5, 0.1), r"invalid `staleness_retention`"),
        (lambda: dp.Staleness.count_bonus(float("nan")), r"invalid `staleness_bonus`"),
        (lambda: dp.InfoBatch(0.5, prune_fraction=0.3), "not both"),
        (lambda: dp.InfoBatch(prune_fraction=0.3, max_drop_probability=1.0), r"invalid `max_drop_probability`"),
        (lambda: dp.Kakurenbo(0.3, tau=-0.5), r"invalid `kakurenbo_tau`"),
        (lambda: dp.Seta(0.5, groups=0), r"invalid `seta_groups`"),
        (lambda: dp.Seta(0.5, window_scale=float("nan")), r"invalid `seta_window_scale` = NaN"),
        (lambda: dp.Seta(0.5, window_scale=1.5), r"invalid `seta_window_scale`"),
        (lambda: dp.Seta(0.5, groups=2, window_scale=0.2), r"window holds at least one group"),
        (lambda: dp.Seta(0.5, delta=0.0), r"invalid `seta_delta`"),
        (lambda: dp.SelectiveBackprop(), "exactly one of prune_fraction and beta"),
        (lambda: dp.SelectiveBackprop(0.5, beta=1.0), "exactly one of prune_fraction and beta"),
        (lambda: dp.SelectiveBackprop(beta=-1.0), r"invalid `sb_beta`"),
        (lambda: dp.SelectiveBackprop(0.5, history=0), r"invalid `sb_history`"),
        (lambda: dp.SelectiveBackprop(0.5, floor=1.5), r"invalid `sb_floor`"),
        (lambda: dp.SelectiveBackprop(0.5).selector(0).select(np.array([0.1, np.nan], dtype=np.float32)), "not finite"),
        (lambda: dp.SelectiveBackprop(0.5).selector(0).restore(b"nonsense"), "magic"),
        (lambda: dp.Seta(0.5, budget="roughly"), "expected \"exact\" or \"reference\""),
        (lambda: dp.StaticScores(np.array([1.0, np.nan]), 0.5), "not finite"),
        (lambda: dp.StaticScores(np.ones(4), 0.5, keep="window"), "needs skip_fraction"),
        (lambda: dp.StaticScores(np.ones(4), 0.5, keep="middle"), "unknown `middle`"),
        (lambda: dp.Schedule(0), "0 epochs"),
        (lambda: dp.Schedule(4, warmup=3, anneal=2), "exceed the run's 4 epochs"),
        (lambda: dp.Schedule(4, interval=0), "interval must be at least 1"),
        (lambda: dp.Schedule(10, warmup=6).budget_matched_fraction(0.5), "cannot be met"),
        (lambda: dp.Pruner(0, dp.Ucb(0.5), 3), "no samples"),
        (lambda: dp.Pruner(10, dp.Ucb(0.5)), "`schedule`: required"),
        (lambda: dp.Pruner(10, dp.Ucb(0.5), "ten"), "`schedule`: expected a Schedule"),
        (lambda: dp.Pruner(10, dp.Ucb(0.5), 3, ema_decay=1.5), "invalid"),
        (lambda: dp.Pruner(10, dp.Ucb(0.5), 3, buffer="last", ema_decay=0.9), "only meaningful"),
        (lambda: dp.Pruner(10, dp.StaticScores(np.ones(4), 0.5), 3), "4 entries but the dataset has 10"),
    ],
)
def test_bad_knobs(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_negative_seed_names_the_argument():
    with pytest.raises(ValueError, match=r"`seed`: -1 is not in \[0, 2\^64\)"):
        dp.Pruner(10, dp.Ucb(0.5), 3, seed=-1)
    with pytest.raises(ValueError, match="`seed`"):
        dp.Pruner(10, dp.Ucb(0.5), 3, seed=2**64)
    assert dp.Pruner(10, dp.Ucb(0.5), 3, seed=2**64 - 1).seed == 2**64 - 1


def test_corrupted_or_mismatched_state(pruner):
    blob = bytearray(pruner.state())
    before = pruner.state()
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="cannot restore saved state"):
        pruner.restore(bytes(blob))
    with pytest.raises(ValueError, match="cannot restore saved state"):
        pruner.restore(b"not a state")
    with pytest.raises(ValueError, match="cannot restore saved state"):
        pruner.restore(bytes(blob[:20]))
    other = dp.Pruner(N, dp.Ucb(0.5), dp.Schedule(3, warmup=1), seed=1)
    with pytest.raises(ValueError, match="seed=0"):
        other.restore(before)
    assert pruner.state() == before


def test_batches_rejects_zero(pruner):
    with pytest.raises(ValueError, match="`batch_size`: must be at least 1"):
        pruner.plan(1).batches(0)


def test_negative_counts_raise_and_name_the_argument():
    # Counts (n, epochs, epoch, batch_size) are unsigned: a negative one raises OverflowError
    # before reaching Rust. On Python >= 3.11 PyO3 attaches a note naming the argument.
    import sys

    for make, arg in [
        (lambda: dp.Pruner(-5, dp.Ucb(0.5), 3), "n"),
        (lambda: dp.Schedule(-3), "epochs"),
        (lambda: dp.Pruner(5, dp.Ucb(0.5), 3).plan(-1), "epoch"),
    ]:
        with pytest.raises(OverflowError) as info:
            make()
        if sys.version_info >= (3, 11):
            assert f"while processing '{arg}'" in " ".join(getattr(info.value, "__notes__", []))
    with pytest.raises(TypeError):
        dp.Ucb("half")


def test_kakurenbo_learning_rate_rules():
    # The factor from the fraction actually hidden never exceeds the reference's from F_e.
    def factors(policy):
        p = dp.Pruner(N, policy, dp.Schedule(5, warmup=1), seed=0)
        rng = np.random.default_rng(0)
        out = []
        for e in range(5):
            plan = p.plan(e)
            out.append(plan.lr_factor)
            for idx, _ in plan.batches(64):
                losses = rng.random(len(idx), dtype=np.float32) + 0.01
                p.observe_predictions(idx, losses, np.ones(len(idx), dtype=bool), np.full(len(idx), 0.95, dtype=np.float32))
        return out

    ref, hidden, off = factors(dp.Kakurenbo(0.4)), factors(dp.Kakurenbo(0.4, lr="hidden-fraction")), factors(dp.Kakurenbo(0.4, lr="off"))
    assert max(ref) > 1.0 and all(h <= r + 1e-12 for h, r in zip(hidden, ref)) and all(h >= 1.0 for h in hidden)
    assert off == [1.0] * 5
    assert repr(dp.Kakurenbo(0.4, lr="hidden-fraction")) == 'Kakurenbo(0.4, tau=0.7, lr="hidden-fraction")'
    with pytest.raises(ValueError, match="`lr`: unknown `boost`"):
        dp.Kakurenbo(0.4, lr="boost")
    with pytest.raises(ValueError, match="`lr`: give either"):
        dp.Kakurenbo(0.4, lr="off", adjust_lr=False)


def test_shard_positions_cut_like_plan_shard():
    # rescore_shard cuts index lists with the crate's shard_positions, as Plan.shard cuts plans.
    from dynaprune._dynaprune import _shard_positions

    plan = dp.Pruner(11, dp.Ucb(0.5), dp.Schedule(2), seed=0).plan(0)
    for world in (1, 2, 3, 4, 12):
        for rank in range(world):
            pos, own = _shard_positions(len(plan), rank, world)
            shard = plan.shard(rank, world)
            assert np.array_equal(plan.indices[pos], shard.indices) and own == shard.own
    with pytest.raises(ValueError, match="`world_size`: 0"):
        _shard_positions(5, 0, 0)
    with pytest.raises(ValueError, match="`rank`: -1"):
        _shard_positions(5, -1, 2)


def test_selective_backprop_selector_matches_the_rust_rule():
    sb = dp.SelectiveBackprop(0.5, history=4)
    assert sb.beta == 1.0 and sb.name == "selective-backprop" and sb.prune_fraction == 0.5
    fill = dp.SelectiveBackprop(beta=0.0, history=4).selector(1)
    assert fill.select(np.array([1.0, 2.0, 2.0, 3.0], dtype=np.float32)).tolist() == [0, 1, 2, 3]
    # scipy.stats.percentileofscore([1, 2, 2, 3], 2, kind="rank") = 62.5
    assert fill.percentile(2.0) == 0.625
    sel = sb.selector(7)
    rng = np.random.default_rng(0)
    batches = [rng.random(64, dtype=np.float32) for _ in range(20)]
    kept = [sel.select(b) for b in batches[:10]]
    state = sel.state()
    again = dp.SelectiveBackprop(0.5, history=4).selector(7)
    again.restore(state)
    for b in batches[10:]:
        assert sel.select(b).tolist() == again.select(b).tolist()
    assert all(k.dtype == np.int64 for k in kept) and sel.batches == 20
    frac = sum(len(k) for k in kept) / (10 * 64)
    assert 0.35 < frac < 0.65, frac
    # Every sample is a candidate in the epoch plan.
    p = dp.Pruner(30, sb, 2, seed=0)
    assert sorted(p.plan(0).indices.tolist()) == list(range(30))
