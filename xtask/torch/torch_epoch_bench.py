#!/usr/bin/env python3
"""PyTorch side of `cargo xtask bench-epoch`: whole training epochs, end to end, with the recipe of
`dynaprune train` (SGD, Nesterov momentum 0.9, weight decay 5e-4 on conv/linear weights only, cosine
learning rate from 0.1 per step, batch 128, per-sample cross-entropy averaged), on data pre-loaded
as tensors (no DataLoader: the strongest fair loop we could write), then evaluation in eval mode
under `torch.inference_mode()` at batch 500.

The networks are those of `torch_resnet_bench.py` (next to this file): the same ResNets as
dynaprune's model crate, layer for layer.

    python3 torch_epoch_bench.py --model resnet8 --data fmnist --fmnist-dir /usr/share/datasets/fashion-mnist \
        --train-samples 20000 --epochs 2 --threads 2 [--channels-last] [--compile] [--autocast-bf16]

`--autocast-bf16` runs forward passes (and so their backward) under
`torch.autocast("cpu", dtype=torch.bfloat16)`: PyTorch's CPU mixed precision (convolutions and
matrix products in bf16 on oneDNN, f32 master weights and optimiser).

Prints one JSON object per epoch on stdout:
    {"epoch": 0, "train_img_per_s": ..., "eval_img_per_s": ..., "train_s": ..., "eval_s": ...,
     "test_acc": ..., "peak_rss_mib": ...}
"""
import argparse
import contextlib
import gzip
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_resnet_bench import ResNet, ARCHS  # noqa: E402


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(args):
    if args.data == "fmnist":
        d = args.fmnist_dir
        xtr = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))[:, None]
        ytr = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))
        xte = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))[:, None]
        yte = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    else:  # 3x32x32 generated, 10 classes (speed only, like dynaprune's synthetic-cifar)
        g = np.random.default_rng(0)
        xtr = g.integers(0, 256, (4096, 3, 32, 32), dtype=np.uint8)
        ytr = g.integers(0, 10, 4096)
        xte = g.integers(0, 256, (1024, 3, 32, 32), dtype=np.uint8)
        yte = g.integers(0, 10, 1024)
    if args.train_samples:
        xtr, ytr = xtr[: args.train_samples], ytr[: args.train_samples]
    if args.test_samples:
        xte, yte = xte[: args.test_samples], yte[: args.test_samples]
    xtr = torch.from_numpy(xtr.astype(np.float32) / 255.0)
    xte = torch.from_numpy(xte.astype(np.float32) / 255.0)
    mean = xtr.mean(dim=(0, 2, 3), keepdim=True)
    std = xtr.std(dim=(0, 2, 3), keepdim=True)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    return xtr, torch.from_numpy(ytr.astype(np.int64)), xte, torch.from_numpy(yte.astype(np.int64))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=sorted(ARCHS), default="resnet8")
    p.add_argument("--data", choices=["fmnist", "cifar"], default="fmnist")
    p.add_argument("--fmnist-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--train-samples", type=int, default=0)
    p.add_argument("--test-samples", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--autocast-bf16", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr, xte, yte = load(args)
    model = ResNet(xtr.shape[1], *ARCHS[args.model], classes=10)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    xtr, xte = xtr.contiguous(memory_format=fmt), xte.contiguous(memory_format=fmt)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.1, momentum=0.9, nesterov=True,
    )
    step_fn = torch.compile(model) if args.compile else model
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.autocast_bf16 else contextlib.nullcontext
    n = xtr.shape[0]
    steps_per_epoch = math.ceil(n / args.batch)
    total = steps_per_epoch * args.epochs
    step = 0
    for epoch in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch: (b + 1) * args.batch]
            x, y = xtr[idx], ytr[idx]
            for g in opt.param_groups:
                g["lr"] = 0.1 * 0.5 * (1 + math.cos(math.pi * step / total))
            with amp():
                logits = step_fn(x)
            losses = F.cross_entropy(logits.float(), y, reduction="none")
            loss = losses.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _ = losses.detach()  # the per-sample losses a pruner would observe
            step += 1
        train_s = time.perf_counter() - t0
        model.eval()
        t1 = time.perf_counter()
        correct = 0
        with torch.inference_mode(), amp():
            for b in range(0, xte.shape[0], 500):
                correct += (step_fn(xte[b: b + 500]).argmax(1) == yte[b: b + 500]).sum().item()
        eval_s = time.perf_counter() - t1
        print(json.dumps({
            "epoch": epoch,
            "train_img_per_s": n / train_s,
            "eval_img_per_s": xte.shape[0] / eval_s,
            "train_s": train_s,
            "eval_s": eval_s,
            "test_acc": correct / xte.shape[0],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }), flush=True)


if __name__ == "__main__":
    main()
