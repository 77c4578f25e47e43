"""One rank of the distributed tests (run under torchrun by test_distributed.py; not collected by
pytest). Each rank writes what it saw to OUT/rank{R}.json, or the exception it raised, then exits
(1 after an exception).

    python -m torch.distributed.run --standalone --nproc_per_node 2 worker.py SCENARIO OUT [options]
"""

import argparse
import datetime
import hashlib
import json
import os
import signal
import sys
import traceback

import numpy as np
import torch
import torch.distributed as dist

import dynaprune as dp
from synthetic import make_pruner, synthetic_losses, synthetic_predictions


def sha(b):
    return hashlib.sha256(b).hexdigest()


def init():
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    return dist.get_rank(), dist.get_world_size()


def train(sampler, epochs, batch, start=0, predictions=False, kill_at=None, checkpoint=None):
    """The loop of a user's script, with synthetic losses in place of a model."""
    log = []
    for epoch in range(start, epochs):
        plan = sampler.set_epoch(epoch)
        order = np.array(list(sampler), dtype=np.int64)
        trained = []
        for k, lo in enumerate(range(0, len(order), batch)):
            idx = torch.from_numpy(order[lo : lo + batch])
            losses = torch.from_numpy(synthetic_losses(idx.numpy(), epoch))
            if predictions:
                logits, targets = synthetic_predictions(idx.numpy(), epoch)
                sampler.observe(losses, idx, torch.from_numpy(logits), torch.from_numpy(targets))
            else:
                sampler.observe(losses, idx)
            trained.extend(idx.tolist())
            if kill_at == (epoch, k):
                os.kill(os.getpid(), signal.SIGKILL)
        state = sampler.state()
        if checkpoint is not None and dist.get_rank() == 0:
            tmp = checkpoint + ".tmp"
            with open(tmp, "wb") as f:
                f.write(epoch.to_bytes(4, "little") + state)
            os.replace(tmp, checkpoint)
        log.append({"epoch": epoch, "plan_sha": sha(plan.indices.tobytes()), "trained": trained, "state_sha": sha(state),
                    "len": len(plan), "shard_len": len(sampler)})
    return log


def scenario(a, out):
    if a.scenario == "equivalence":
        rank, world = init()
        sampler = dp.PlanSampler(make_pruner(a.policy, a.n, a.epochs, a.seed), sync=a.sync)
        log = train(sampler, a.epochs, a.batch, predictions=a.policy == "kakurenbo")
        return {"rank": rank, "world": world, "epochs": log, "passes": sampler.passes, "padding_passes": sampler.padding_passes,
                "observed": sampler.observed, "selection_counts": sampler.pruner.selection_counts().tolist()}
    if a.scenario == "resume":
        rank, world = init()
        attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
        sampler = dp.PlanSampler(make_pruner(a.policy, a.n, a.epochs, a.seed), sync=a.sync)
        ckpt = os.path.join(out, "checkpoint.bin")
        start = 0
        if os.path.exists(ckpt):
            with open(ckpt, "rb") as f:
                data = f.read()
            sampler.restore(data[4:])
            start = int.from_bytes(data[:4], "little") + 1
        kill_at = (a.kill_epoch, 2) if attempt == 0 and rank == 1 else None
        log = train(sampler, a.epochs, a.batch, start=start, kill_at=kill_at, checkpoint=ckpt)
        return {"rank": rank, "attempt": attempt, "start": start, "final_state_sha": sha(sampler.state()), "epochs": log}
    # Disagreements and bad input: every rank must raise ValueError.
    case = a.scenario
    if case == "before-process-group":
        sampler = dp.PlanSampler(make_pruner("ucb", a.n, a.epochs, 0))  # WORLD_SIZE=2, no group yet
        init()
        return {}
    if case == "late-process-group":
        world = int(os.environ.pop("WORLD_SIZE"))
        rank = int(os.environ["RANK"])
        sampler = dp.PlanSampler(make_pruner("ucb", a.n, a.epochs, 0))  # plans for one process
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
        sampler.set_epoch(0)
        return {}
    rank, world = init()
    seed, n, kw = 0, a.n, {}
    if case == "seed" and rank == 1:
        seed = 7
    if case == "n" and rank == 1:
        n = a.n + 1
    if case == "world-size" and rank == 1:
        kw = {"world_size": 3}
    if case == "world-size-zero":
        kw = {"world_size": 0}
    if case == "negative-rank" and rank == 0:
        kw = {"rank": -1}
    if case == "rank-too-large" and rank == 1:
        kw = {"rank": 5}
    if case == "sync" and rank == 1:
        kw = {"sync": "epoch"}
    sampler = dp.PlanSampler(make_pruner("ucb", n, a.epochs, seed), **kw)
    if case == "state":
        train(sampler, 2, a.batch)
        if rank == 1:  # restores another run's state
            other = make_pruner("ucb", n, a.epochs, seed)
            other.plan(0)
            sampler.restore(other.state())
        sampler.set_epoch(2)
    return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("out")
    ap.add_argument("--policy", default="ucb")
    ap.add_argument("--sync", default="step")
    ap.add_argument("--samples", dest="n", type=int, default=1001)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kill-epoch", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rank = os.environ.get("RANK", "?")
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    path = os.path.join(a.out, f"rank{rank}.json" if attempt == "0" or a.scenario != "resume" else f"rank{rank}.attempt{attempt}.json")
    try:
        result = scenario(a, a.out)
        code = 0
    except Exception as e:  # noqa: BLE001 - reported to the test, then the rank fails
        result = {"error": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        code = 1
    with open(path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)
    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass
    sys.exit(code)


if __name__ == "__main__":
    main()
