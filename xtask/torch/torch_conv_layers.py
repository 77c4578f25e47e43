"""PyTorch's channels_last convolutions on the layer shapes of `crates/model/examples/conv_layers.rs`:
GFLOP/s of the forward, the whole backward (input + weight gradients) and the weight gradient
alone, median of interleaved rounds, so the two outputs compare line by line.

    OMP_NUM_THREADS=2 python xtask/torch/torch_conv_layers.py [batch] [iters]
"""
import statistics
import sys
import time

import torch

SHAPES = [
    ("r20 stem", 3, 32, 16, 3, 1),
    ("r20/r8 16ch", 16, 32, 16, 3, 1),
    ("r20 16->32 s2", 16, 32, 32, 3, 2),
    ("r20 32ch", 32, 16, 32, 3, 1),
    ("r20 32->64 s2", 32, 16, 64, 3, 2),
    ("r20 64ch", 64, 8, 64, 3, 1),
    ("r18 64ch", 64, 32, 64, 3, 1),
    ("r18 64->128 s2", 64, 32, 128, 3, 2),
    ("r18 128ch", 128, 16, 128, 3, 1),
    ("r18 128->256 s2", 128, 16, 256, 3, 2),
    ("r18 256ch", 256, 8, 256, 3, 1),
    ("r18 256->512 s2", 256, 8, 512, 3, 2),
    ("r18 512ch", 512, 4, 512, 3, 1),
    ("r18 1x1 256->512 s2", 256, 8, 512, 1, 2),
]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
    print(f"# torch {torch.__version__}, batch {n}, median of {iters} rounds, threads {torch.get_num_threads()}, channels_last")
    print("layer\tpath\tfwd_gflops\tbwd_gflops\tdx_gflops (bwd - dw)\tdw_gflops")
    for name, cin, h, cout, k, s in SHAPES:
        p = k // 2
        conv = torch.nn.Conv2d(cin, cout, k, s, p, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(n, cin, h, h).to(memory_format=torch.channels_last).requires_grad_(True)
        ho = (h + 2 * p - k) // s + 1
        flops = 2.0 * n * cout * cin * k * k * ho * ho
        r = torch.randn(n, cout, ho, ho).to(memory_format=torch.channels_last)
        fw, bw, wg = [], [], []
        for i in range(iters + 1):
            t = time.perf_counter()
            y = conv(x)
            f = time.perf_counter() - t
            t = time.perf_counter()
            torch.autograd.grad(y, [x, conv.weight], r)
            b = time.perf_counter() - t
            y = conv(x.detach())
            t = time.perf_counter()
            torch.autograd.grad(y, [conv.weight], r)
            w = time.perf_counter() - t
            if i > 0:
                fw.append(f)
                bw.append(b)
                wg.append(w)
        f, b, w = statistics.median(fw), statistics.median(bw), statistics.median(wg)
        dx = max(b - w, 1e-9)
        print(f"{name}\ttorch-cl\t{flops / f / 1e9:.1f}\t{2 * flops / b / 1e9:.1f}\t{flops / dx / 1e9:.1f}\t{flops / w / 1e9:.1f}")


if __name__ == "__main__":
    main()
