#!/usr/bin/env python3
"""What data-parallel training pays for dynaprune's gathers: per training step, with gloo and W
processes, for per-step and per-epoch sync, against the plain single-process ``observe`` of the
same batch. Losses are synthetic (no model), so only dynaprune's side of a step is timed.

    torchrun --nproc_per_node 2 crates/pruning-py/benches/ddp_gather.py --batches 128,1024

Rounds interleave the three modes; each mode's figure is the median over rounds of (wall time of
the round's steps, the per-epoch sync included) / steps, on rank 0, with process CPU time beside
it. Prints one line per (batch, mode).
"""

import argparse
import datetime
import statistics
import time

import numpy as np
import torch
import torch.distributed as dist

import dynaprune as dp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="128,1024", help="per-rank batch sizes")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--steps", type=int, default=40, help="steps per round")
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=5))
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(rank)

    def fresh(sync):
        s = dp.PlanSampler(dp.Pruner(a.n, dp.Ucb(0.5), dp.Schedule(3), seed=0), sync=sync)
        s.set_epoch(0)
        return s

    for b in map(int, a.batches.split(",")):
        steps = min(a.steps, (a.n // 2 // world) // b)  # within a plan's shard
        results = {"local": [], "step": [], "epoch": []}
        for r in range(a.rounds):
            for mode in ("local", "step", "epoch"):
                s = fresh("step" if mode == "local" else mode)
                order = np.array(list(s), dtype=np.int64)
                batches = [(torch.from_numpy(order[k * b : (k + 1) * b]), torch.from_numpy(rng.random(b, dtype=np.float32) + 0.01))
                           for k in range(steps)]
                dist.barrier()
                w0, c0 = time.perf_counter(), time.process_time()
                if mode == "local":
                    for idx, losses in batches:
                        s.pruner.observe(idx.numpy(), losses.numpy())
                else:
                    for idx, losses in batches:
                        s.observe(losses, idx)
                    s.sync()
                w, c = time.perf_counter() - w0, time.process_time() - c0
                if r > 0:  # the first round warms up
                    results[mode].append((w / steps, c / steps))
        if rank == 0:
            for mode, rs in results.items():
                wall = statistics.median(x[0] for x in rs) * 1e6
                cpu = statistics.median(x[1] for x in rs) * 1e6
                what = "single-process observe" if mode == "local" else f"PlanSampler.observe, sync={mode}"
                print(f"gather world={world} batch={b} mode={mode} per_step_us={wall:.0f} cpu_us={cpu:.0f}  ({what}; "
                      f"{a.rounds - 1} rounds x {steps} steps, median)", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
