#!/usr/bin/env python3
"""dynaprune in a PyTorch loop: ResNet-8 on Fashion-MNIST with full data, UCB and InfoBatch.

The network is our own copy of the ResNet-8 of the project's PyTorch anchor (basic blocks, widths
16-32-64, 3x3 stem, global average pool). The recipe is dynaprune's: SGD with Nesterov momentum
0.9, weight decay 5e-4 on conv/linear weights, cosine learning rate from 0.1, batch 128, seed 0.
Both pruned runs are budget-matched: over the whole run they train on `--prune` less of the
sample passes than full data, warm-up (UCB) and annealing (InfoBatch) epochs included.

Two ways to feed the model, same plans:
- default: pre-loaded tensors indexed with each plan batch (the fast path);
- ``--loader``: the three-line integration, ``PlanSampler`` + ``WithIndex`` + ``DataLoader``.

Prints, per run: test accuracy, sample passes, training time (wall and process CPU) and the time
spent inside dynaprune (``plan`` + ``observe``, including moving the losses to NumPy).

    pip install torch target/wheels/dynaprune-*.whl   # or: maturin develop -m crates/pruning-py/Cargo.toml
    python crates/pruning-py/examples/pytorch_resnet.py --epochs 5 --threads 2
"""

import argparse
import gzip
import math
import os
import pathlib
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import dynaprune as dp


def conv_bn(cin, cout, k, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride)
        self.b = conv_bn(cout, cout, 3, 1)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.b(F.relu(self.a(x))) + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self, in_ch=1, widths=(16, 32, 64), strides=(1, 2, 2), classes=10):
        super().__init__()
        self.stem = conv_bn(in_ch, widths[0], 3, 1)
        layers, cin = [], widths[0]
        for w, s in zip(widths, strides):
            layers.append(BasicBlock(cin, w, s))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        return self.head(self.layers(F.relu(self.stem(x))).mean((2, 3)))


def idx_file(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load(root):
    root = pathlib.Path(root)
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise SystemExit(f"{root}: missing {', '.join(missing)} (apt-get install dataset-fashion-mnist, or --data DIR)")
    xs, ys, xt, yt = (idx_file(root / n) for n in names)
    norm = lambda x: torch.from_numpy(((x.astype(np.float32) / 255.0 - 0.2860) / 0.3530)[:, None])
    return norm(xs), torch.from_numpy(ys.astype(np.int64)), norm(xt), torch.from_numpy(yt.astype(np.int64))


def evaluate(net, xt, yt):
    net.eval()
    correct = 0
    with torch.no_grad():
        for k in range(0, len(xt), 1000):
            correct += (net(xt[k : k + 1000]).argmax(1) == yt[k : k + 1000]).sum().item()
    return correct / len(xt)


def make_opt(net, lr):
    decay = [q for q in net.parameters() if q.ndim > 1]
    rest = [q for q in net.parameters() if q.ndim <= 1]
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}], lr=lr, momentum=0.9, nesterov=True
    )


def pruner_for(rule, n, epochs, prune, seed):
    """Budget-matched: the pruned epochs remove more, to pay for the full-data ones."""
    if rule == "full":
        return dp.Pruner(n, dp.FullData(), dp.Schedule(epochs), seed=seed)
    if rule == "ucb":
        s = dp.Schedule(epochs, warmup=1)
        return dp.Pruner(n, dp.Ucb(s.budget_matched_fraction(prune)), s, seed=seed)
    if rule == "infobatch":
        # Its first epoch cannot prune (no sample has a score yet), so it counts as a warm-up
        # in the budget, as in the dynaprune binary.
        s = dp.Schedule(epochs, warmup=1, anneal_fraction=1 - dp.InfoBatch.DEFAULT_DELTA)
        return dp.Pruner(n, dp.InfoBatch(prune_fraction=s.budget_matched_fraction(prune)), s, seed=seed)
    raise ValueError(rule)


def run(rule, data, a):
    xs, ys, xt, yt = data
    torch.manual_seed(a.seed)  # the network's initial weights; dynaprune draws from its own seed
    net = ResNet8()
    opt = make_opt(net, a.lr)
    n, epochs = len(xs), a.epochs
    pruner = pruner_for(rule, n, epochs, a.prune, a.seed)
    sampler = dp.PlanSampler(pruner)
    loader = None
    if a.loader:
        ds = dp.WithIndex(torch.utils.data.TensorDataset(xs, ys))
        loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, sampler=sampler)
    passes, pruning_s, train_wall, train_cpu = 0, 0.0, 0.0, 0.0
    for epoch in range(epochs):
        w0, c0 = time.perf_counter(), time.process_time()
        t = time.perf_counter()
        plan = sampler.set_epoch(epoch)
        pruning_s += time.perf_counter() - t
        lr = 0.5 * a.lr * (1 + math.cos(math.pi * epoch / epochs)) * plan.lr_factor
        for g in opt.param_groups:
            g["lr"] = lr
        net.train()
        if loader is not None:
            batches = loader
        else:
            batches = ((ii, xs[ii], ys[ii]) for ii in (torch.from_numpy(i) for i, _ in plan.batches(a.batch)))
        for idx, x, y in batches:
            losses = F.cross_entropy(net(x), y, reduction="none")
            t = time.perf_counter()
            sampler.observe(losses, idx)
            w = sampler.weights_for(idx)
            pruning_s += time.perf_counter() - t
            loss = dp.weighted_mean(losses, w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            passes += len(idx)
        train_wall += time.perf_counter() - w0
        train_cpu += time.process_time() - c0
        print(f"  {rule} epoch {epoch + 1}/{epochs} {plan.phase:7s} samples {len(plan):6d} lr x{plan.lr_factor:.3f}", flush=True)
    acc = evaluate(net, xt, yt)
    print(
        f"result rule={rule} epochs={epochs} prune={a.prune if rule != 'full' else 0.0} test_acc={acc:.4f} "
        f"sample_passes={passes} pass_fraction={passes / (n * epochs):.4f} train_s={train_wall:.1f} train_cpu_s={train_cpu:.1f} "
        f"dynaprune_s={pruning_s:.3f} dynaprune_share={pruning_s / train_wall:.4%} loader={'DataLoader' if a.loader else 'tensors'}",
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--prune", type=float, default=0.5, help="fraction of the full-data sample passes removed")
    ap.add_argument("--rules", default="full,ucb,infobatch")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loader", action="store_true", help="feed through PlanSampler + DataLoader")
    ap.add_argument("--train-samples", type=int, default=None, help="use only the first N training images (a quick check)")
    ap.add_argument("--data", default=os.environ.get("DYNAPRUNE_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = load(a.data)
    if a.train_samples is not None:
        if a.train_samples < 1:
            ap.error("--train-samples must be at least 1")
        data = (data[0][: a.train_samples], data[1][: a.train_samples], data[2], data[3])
    print(f"torch {torch.__version__}, dynaprune {dp.__version__}, {a.threads} threads", flush=True)
    for rule in a.rules.split(","):
        run(rule, data, a)


if __name__ == "__main__":
    main()
