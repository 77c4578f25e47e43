#!/usr/bin/env python3
"""PyTorch CPU reference for dynaprune's training-speed benchmark.

(The project's copy of the shared anchor script `anchors/torch_resnet_bench.py`, unchanged below this
paragraph, so that the benchmarks and docs name a file inside the repository.)

The anchor every CPU speed claim is compared with: the same small-image ResNets as dynaprune's model
crate, trained with SGD (momentum 0.9, Nesterov, weight decay 5e-4 on conv/linear weights) on random
data, timed per step after warm-up, median reported.

    python3 torch_resnet_bench.py --model resnet8 --input fmnist --threads 2 --batch 128

A step micro-benchmark: on our 2-core machine (2026-11-29) it reported 1,229-1,350 img/s for resnet8/fmnist
training while the same network trained at 1,661 img/s inside a plain PyTorch loop over pre-loaded
Fashion-MNIST tensors. Speed claims should therefore also be checked end to end (whole epochs, same recipe).

Prints one line per mode:  torch model=resnet8 input=fmnist mode=train threads=2 batch=128 img_per_s=1918.5
Architectures (basic blocks, 3x3 stem with BN+ReLU, no max-pool, global average pool, linear head;
a 1x1 conv+BN shortcut where shape changes):
  resnet8  widths 16-32-64,        blocks 1-1-1,   strides 1-2-2
  resnet20 widths 16-32-64,        blocks 3-3-3,   strides 1-2-2
  resnet18 widths 64-128-256-512,  blocks 2-2-2-2, strides 1-2-2-2
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = {
    "resnet8": ([16, 32, 64], [1, 1, 1], [1, 2, 2]),
    "resnet20": ([16, 32, 64], [3, 3, 3], [1, 2, 2]),
    "resnet18": ([64, 128, 256, 512], [2, 2, 2, 2], [1, 2, 2, 2]),
}
INPUTS = {"fmnist": (1, 28), "cifar": (3, 32)}


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


class ResNet(nn.Module):
    def __init__(self, in_ch, widths, blocks, strides, classes=10):
        super().__init__()
        self.stem = conv_bn(in_ch, widths[0], 3, 1)
        layers, cin = [], widths[0]
        for w, n, s in zip(widths, blocks, strides):
            for i in range(n):
                layers.append(BasicBlock(cin, w, s if i == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        return self.head(self.layers(F.relu(self.stem(x))).mean((2, 3)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet8", choices=sorted(ARCHS))
    p.add_argument("--input", default="fmnist", choices=sorted(INPUTS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--modes", default="train,infer")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ch, hw = INPUTS[a.input]
    net = ResNet(ch, *ARCHS[a.model])
    decay = [q for q in net.parameters() if q.ndim > 1]
    rest = [q for q in net.parameters() if q.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
                          lr=0.05, momentum=0.9, nesterov=True)
    xs = [torch.randn(a.batch, ch, hw, hw) for _ in range(2)]
    ys = [torch.randint(0, 10, (a.batch,)) for _ in range(2)]
    for mode in a.modes.split(","):
        times = []
        for it in range(a.warmup + a.iters):
            x, y = xs[it % 2], ys[it % 2]
            t0 = time.perf_counter()
            if mode == "train":
                net.train()
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                opt.step()
            else:
                net.eval()
                with torch.no_grad():
                    net(x).argmax(-1)
            if it >= a.warmup:
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"torch model={a.model} input={a.input} mode={mode} threads={a.threads} batch={a.batch} "
              f"img_per_s={a.batch / med:.1f}", flush=True)


if __name__ == "__main__":
    main()
