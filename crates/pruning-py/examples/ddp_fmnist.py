#!/usr/bin/env python3
"""dynaprune in data-parallel training: ResNet-8 on Fashion-MNIST under DistributedDataParallel,
started by torchrun (or accelerate launch), CPU processes talking through gloo.

Every rank builds the same Pruner; PlanSampler reads rank and world size from the process group,
iterates only its shard of each epoch's plan, and gathers every rank's (index, loss) pairs, so
that all the pruners see one stream and plan identically. The network, data and recipe are those
of ``pytorch_resnet.py`` beside this file; ``--batch`` is the global batch (each of the W ranks
takes batch / W), so a 2-rank run takes the same steps as a 1-process run.

    torchrun --nproc_per_node 2 crates/pruning-py/examples/ddp_fmnist.py --epochs 5
    accelerate launch --cpu --num_processes 2 crates/pruning-py/examples/ddp_fmnist.py --accelerate
    python crates/pruning-py/examples/ddp_fmnist.py --threads 2          # one process, for comparison

Rank 0 reports each epoch on stderr and ends with exactly one line on stdout:
    ddp ranks=2 policy=ucb passes=<global sample passes> state_sha256_equal=true test_acc=<acc>
"""

import argparse
import datetime
import hashlib
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

import dynaprune as dp
from pytorch_resnet import ResNet8, evaluate, load, make_opt


def pruner_for(policy, n, epochs, prune, seed):
    """UCB budget-matched: over the run, `prune` of the full-data passes removed, warm-up included."""
    if policy == "full":
        return dp.Pruner(n, dp.FullData(), dp.Schedule(epochs), seed=seed)
    s = dp.Schedule(epochs, warmup=min(1, epochs - 1))
    return dp.Pruner(n, dp.Ucb(s.budget_matched_fraction(prune)), s, seed=seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", choices=["ucb", "full"], default="ucb")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--prune", type=float, default=0.5, help="fraction of the full-data sample passes removed")
    ap.add_argument("--batch", type=int, default=128, help="global batch, split evenly over the ranks")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sync", choices=["step", "epoch"], default="step", help="gather losses every step or once per epoch")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--max-train-samples", type=int, default=None, help="only the first N training images (a quick check)")
    ap.add_argument("--accelerate", action="store_true", help="set up with HF accelerate's Accelerator (accelerate launch)")
    ap.add_argument("--data", default=os.environ.get("DYNAPRUNE_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    if a.epochs < 1:
        ap.error("--epochs must be at least 1")
    if a.max_train_samples is not None and a.max_train_samples < 1:
        ap.error("--max-train-samples must be at least 1")
    torch.set_num_threads(a.threads)

    accelerator = None
    if a.accelerate:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)  # initialises the process group under accelerate launch
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=5))
    distributed = dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if a.batch % world:
        ap.error(f"--batch {a.batch} must be a multiple of the number of ranks ({world})")
    say = (lambda *m: print(*m, file=sys.stderr, flush=True)) if rank == 0 else (lambda *m: None)

    xs, ys, xt, yt = load(a.data)
    if a.max_train_samples is not None:
        xs, ys = xs[: a.max_train_samples], ys[: a.max_train_samples]
    torch.manual_seed(a.seed)  # the same initial weights on every rank; dynaprune draws from its own seed
    net = ResNet8()
    opt = make_opt(net, a.lr)
    if accelerator is not None:
        net, opt = accelerator.prepare(net, opt)  # not the DataLoader: the sampler shards already
    elif distributed:
        net = torch.nn.parallel.DistributedDataParallel(net)

    n = len(xs)
    sampler = dp.PlanSampler(pruner_for(a.policy, n, a.epochs, a.prune, a.seed), sync=a.sync)
    loader = torch.utils.data.DataLoader(
        dp.WithIndex(torch.utils.data.TensorDataset(xs, ys)), batch_size=a.batch // world, sampler=sampler
    )
    say(f"torch {torch.__version__}, dynaprune {dp.__version__}, {world} rank(s) x {a.threads} thread(s), "
        f"{a.policy}, {n} samples, sync={a.sync}")
    train_wall = train_cpu = 0.0
    for epoch in range(a.epochs):
        w0, c0 = time.perf_counter(), time.process_time()
        plan = sampler.set_epoch(epoch)
        lr = 0.5 * a.lr * (1 + math.cos(math.pi * epoch / a.epochs)) * plan.lr_factor
        for g in opt.param_groups:
            g["lr"] = lr
        net.train()
        for idx, x, y in loader:
            loss = sampler.loss(F.cross_entropy(net(x), y, reduction="none"), idx)
            opt.zero_grad(set_to_none=True)
            if accelerator is not None:
                accelerator.backward(loss)
            else:
                loss.backward()
            opt.step()
        train_wall += time.perf_counter() - w0
        train_cpu += time.process_time() - c0
        say(f"epoch {epoch + 1}/{a.epochs} {plan.phase:7s} plan {len(plan):6d} shard {len(sampler):6d} "
            f"train {train_wall:7.1f} s wall, {train_cpu:7.1f} s CPU (rank 0)")

    state = sampler.state()
    digest = hashlib.sha256(state).hexdigest()
    digests = [None] * world
    if distributed:
        dist.all_gather_object(digests, digest)
    else:
        digests = [digest]
    acc = None
    if rank == 0:
        model = net.module if hasattr(net, "module") else net
        acc = evaluate(model, xt, yt)
        say(f"train_s={train_wall:.1f} train_cpu_s={train_cpu:.1f} (rank 0) passes={sampler.passes} "
            f"padding_passes={sampler.padding_passes} observed={sampler.observed} state_sha256={digest[:12]}")
        equal = str(len(set(digests)) == 1).lower()
        print(f"ddp ranks={world} policy={a.policy} passes={sampler.passes} state_sha256_equal={equal} test_acc={acc:.4f}",
              flush=True)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
