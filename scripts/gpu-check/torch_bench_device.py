#!/usr/bin/env python3
"""The PyTorch reference benchmark on any device (the GPU check's anchor).

Reuses the networks of xtask/torch/torch_resnet_bench.py (passed with --anchor: the
architectures are defined there, once) and its method (SGD with Nesterov momentum 0.9, weight
decay 5e-4 on conv/linear weights, random data, median step time after warm-up), adding a
--device flag and a device synchronisation at the end of each timed step.

f32 throughout, like dynaprune's Candle path: TF32 is off for cuDNN convolutions and matmuls
unless --tf32 is given (PyTorch enables it for cuDNN by default).

    python3 torch_bench_device.py --anchor torch_resnet_bench.py --device cuda --model resnet18 --input cifar
prints:  torch model=resnet18 input=cifar mode=train device=cuda tf32=0 batch=128 img_per_s=...
"""
import argparse
import importlib.util
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--anchor", required=True, help="path of torch_resnet_bench.py")
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--input", default="cifar")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--modes", default="train,infer")
    p.add_argument("--tf32", action="store_true")
    a = p.parse_args()
    spec = importlib.util.spec_from_file_location("anchor", a.anchor)
    anchor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anchor)
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    torch.manual_seed(0)
    ch, hw = anchor.INPUTS[a.input]
    net = anchor.ResNet(ch, *anchor.ARCHS[a.model]).to(dev)
    decay = [q for q in net.parameters() if q.ndim > 1]
    rest = [q for q in net.parameters() if q.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
                          lr=0.05, momentum=0.9, nesterov=True)
    xs = [torch.randn(a.batch, ch, hw, hw, device=dev) for _ in range(2)]
    ys = [torch.randint(0, 10, (a.batch,), device=dev) for _ in range(2)]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for mode in a.modes.split(","):
        times = []
        for it in range(a.warmup + a.iters):
            x, y = xs[it % 2], ys[it % 2]
            sync()
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
            sync()
            if it >= a.warmup:
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"torch model={a.model} input={a.input} mode={mode} device={a.device} tf32={int(a.tf32)} "
              f"batch={a.batch} img_per_s={a.batch / med:.1f}", flush=True)


if __name__ == "__main__":
    main()
