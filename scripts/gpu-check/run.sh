#!/usr/bin/env bash
# The GPU check, run on a lent GPU machine from the repository root, after
# scripts/gpu-check/prepare.sh here:   device run: command "bash scripts/gpu-check/run.sh",
#                                       carry [".gpu-carry"], timeout_s 570
# Fits one device call (each step has its own time limit; the whole stays under ~9 minutes):
#   (a) device-check: ResNet-8/20/18 forward, backward, one SGD step and BatchNorm statistics on
#       CUDA vs our CPU kernels on the same seeded weights and inputs (relative error);
#   (b) training and inference img/s at batch 128 of ResNet-18 3x32x32 (and ResNet-20, ResNet-8)
#       on the GPU, next to the same networks in that machine's PyTorch (f32, TF32 off; and TF32
#       on, for information), as ratios; ours also with bf16 convolutions (--kernels candle-bf16);
#   (c) Fashion-MNIST, ResNet-8, full data vs UCB at 50%, a few epochs, with wall-clock times.
# Everything lands in $OUT: gpu-check.log (all output), gpu-summary.txt (the numbers),
# gpu-runs.tar.gz (the runs' folders, without checkpoints).
set -uo pipefail
c=.gpu-carry
out=${OUT:-/tmp/gpu-check-out}
work=/tmp/gpu-check
epochs=${GPU_CHECK_EPOCHS:-4}
mkdir -p "$out" && rm -rf "$work" && mkdir -p "$work"
exec > >(tee "$out/gpu-check.log") 2>&1
summary="$out/gpu-summary.txt"
echo "# GPU check of commit $(cat $c/COMMIT 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$summary"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/# gpu: /' | tee -a "$summary"
# cuBLAS, cuRAND, NVRTC and the CUDA runtime: the machine's Python CUDA wheels (PyTorch's).
libs=$(python3 - <<'PY'
import glob, os, site
dirs = {os.path.dirname(f) for sp in site.getsitepackages()
        for f in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True)}
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH="$libs:/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="$c/dynaprune"
if [ -f "$bin.xz" ] && [ ! -x "$bin" ]; then # xz, or Python's lzma where xz is missing
  xz -dk "$bin.xz" 2>/dev/null || python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$bin.xz" "$bin"
  chmod +x "$bin"
fi
"$bin" --version | sed 's/^/# binary: /' | tee -a "$summary"
if ldd "$bin" | grep -q "not found"; then
  echo "missing libraries:"; ldd "$bin" | grep "not found"
fi
step() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  echo "=== $name"
  local t0=$SECONDS
  timeout "$secs" "$@"; local rc=$?
  echo "=== $name: rc=$rc in $((SECONDS - t0)) s"
  return $rc
}
# (a)
step device-check 120 "$bin" device-check --device cuda --models resnet8:fmnist,resnet20:cifar,resnet18:cifar \
  --batch 16 | tee "$work/device-check.txt"
grep -E "^device-check|OVER" "$work/device-check.txt" >> "$summary"
# (b)
step bench-ours 150 "$bin" bench-train --device cuda --kernels candle,candle-bf16 --warmup 5 --iters 20 \
  --models resnet18:cifar,resnet20:cifar,resnet8:fmnist | tee "$work/bench-ours.txt"
if [ -f "$c/torch_resnet_bench.py" ]; then
  for tf in "" --tf32; do
    for m in resnet18:cifar resnet20:cifar resnet8:fmnist; do
      step "torch $m $tf" 60 python3 scripts/gpu-check/torch_bench_device.py --anchor "$c/torch_resnet_bench.py" \
        --device cuda --model "${m%%:*}" --input "${m##*:}" --warmup 5 --iters 20 $tf | tee -a "$work/bench-torch.txt"
    done
  done
fi
python3 - "$work/bench-ours.txt" "$work/bench-torch.txt" >> "$summary" <<'PY'
import sys
def fields(line):
    return dict(t.split("=", 1) for t in line.split() if "=" in t)
ours = [fields(l) for l in open(sys.argv[1]) if l.startswith("bench ")]
try:
    torch = [fields(l) for l in open(sys.argv[2]) if l.startswith("torch ")]
except FileNotFoundError:
    torch = []
for o in ours:
    line = f"{o['model']} {o['input']} {o['mode']} device=cuda kernels={o['kernels']} ours={float(o['img_per_s']):.1f}"
    for tf in ("0", "1"):
        t = [x for x in torch if x["model"] == o["model"] and x["input"] == o["input"] and x["mode"] == o["mode"] and x["tf32"] == tf]
        if t:
            v = float(t[0]["img_per_s"])
            line += f" torch_tf32={tf}: {v:.1f} ratio={float(o['img_per_s']) / v:.2f}x"
    print(line)
PY
# (c)
for p in full ucb; do
  pf=0.5; [ $p = full ] && pf=0
  step "train $p" 150 "$bin" train --dataset fashion-mnist --data-dir "$c/data" --model resnet8 --policy $p \
    --prune-fraction $pf --epochs "$epochs" --device cuda --progress plain --out "$work/runs/$p-pf$pf"
  python3 - "$work/runs/$p-pf$pf/summary.json" >> "$summary" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"run {sys.argv[1]}: no summary ({e})"); sys.exit()
print(f"fashion-mnist resnet8 {s['policy']} prune={s['prune_fraction']} epochs={s['epochs']} device={s['device']}: "
      f"test acc {100 * s['final_test_acc']:.2f}%, wall {s['wall_s']:.1f} s, train {s['train_s']:.1f} s "
      f"(compute {s['compute_s']:.1f}, data {s['data_s']:.2f}, select {s['select_s']:.3f}, observe {s['observe_s']:.3f}), "
      f"eval {s['eval_s']:.1f} s, samples {s['samples']}/{s['full_data_samples']}")
PY
done
tar -C "$work" --exclude='checkpoint*' -czf "$out/gpu-runs.tar.gz" . 2>/dev/null
echo "=== summary"; cat "$summary"
