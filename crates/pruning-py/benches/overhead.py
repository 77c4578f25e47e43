#!/usr/bin/env python3
"""What dynaprune costs a Python training loop: ``plan(epoch)`` plus one ``observe`` per batch,
per epoch, at n = 60k (Fashion-MNIST, CIFAR) and n = 1.28M (ImageNet), with synthetic losses.

Reports wall and process-CPU time per epoch, the cost per sample pass, and the training speed
(images/s) at which that cost would reach 1% of an epoch: a loop slower than that pays under 1%.
With ``--epoch-seconds S`` (a measured epoch of your model at n samples) it also prints the
fraction of that epoch directly.

    python crates/pruning-py/benches/overhead.py [--batch 128] [--epochs 4] [--epoch-seconds 38.5]

Median over epochs after the first pruned one (the first planned epoch is full data here, as
with a warm-up). Needs only NumPy and the installed wheel.
"""

import argparse
import statistics
import time

import numpy as np

import dynaprune as dp


def one(n, policy, batch, epochs, observe_predictions=False):
    pruner = dp.Pruner(n, policy, dp.Schedule(epochs, warmup=1), seed=0)
    rng = np.random.default_rng(0)
    pool = rng.random(n, dtype=np.float32) + 0.01  # losses, gathered per batch as a loop would
    walls, cpus, passes = [], [], []
    for e in range(epochs):
        w0, c0 = time.perf_counter(), time.process_time()
        plan = pruner.plan(e)
        idx = plan.indices
        for k in range(0, len(idx), batch):
            b = idx[k : k + batch]
            if observe_predictions:
                pruner.observe_predictions(b, pool[b], np.ones(len(b), dtype=bool), np.full(len(b), 0.9, np.float32))
            else:
                pruner.observe(b, pool[b])
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        passes.append(len(idx))
    # epochs after warm-up and the first selection (which sees mostly unseen samples)
    sl = slice(2, None)
    return statistics.median(walls[sl]), statistics.median(cpus[sl]), statistics.median(passes[sl])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--sizes", default="60000,1281167")
    ap.add_argument("--epoch-seconds", type=float, default=None, help="a measured training epoch at the first size")
    a = ap.parse_args()
    if a.epochs < 3:
        ap.error("--epochs must be at least 3 (warm-up, first selection, then measured epochs)")
    rules = [
        ("random", lambda: dp.UniformRandom(0.5), False),
        ("ucb", lambda: dp.Ucb(0.5), False),
        ("epsilon-greedy", lambda: dp.EpsilonGreedy(0.5), False),
        ("infobatch", lambda: dp.InfoBatch(0.5), False),
        ("kakurenbo", lambda: dp.Kakurenbo(0.5), True),
    ]
    for n in (int(s) for s in a.sizes.split(",")):
        for name, make, preds in rules:
            wall, cpu, passes = one(n, make(), a.batch, a.epochs, preds)
            per_pass_us = wall / passes * 1e6
            line = (
                f"overhead n={n} rule={name} batch={a.batch} ms_per_epoch={wall * 1e3:.1f} cpu_ms_per_epoch={cpu * 1e3:.1f} "
                f"us_per_sample_pass={per_pass_us:.3f} one_percent_at_img_per_s={0.01 / (wall / passes):,.0f}"
            )
            if a.epoch_seconds and n == int(a.sizes.split(",")[0]):
                line += f" fraction_of_epoch={wall / (a.epoch_seconds * passes / n):.4%}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
