#!/usr/bin/env bash
# Prepares the GPU check (issue "The CUDA path"), here, on a machine without a GPU:
#   1. a CUDA build environment matching the lent machines' driver (580 series = CUDA 13.0, so
#      the toolkit is 13.0: a driver refuses PTX from a newer nvcc), via scripts/cuda-env.sh;
#   2. `dynaprune` built with --features cuda for Hopper (CUDA_COMPUTE_CAP=90) into
#      target/cuda-<version>, stripped;
#   3. everything the check needs on the GPU machine in .gpu-carry/ (ignored by git, < 64 MiB):
#      the binary, Fashion-MNIST (from data/ or Debian's package), and the PyTorch reference
#      script xtask/torch/torch_resnet_bench.py.
# Then, with the device tool:  run(command="bash scripts/gpu-check/run.sh", carry=[".gpu-carry"])
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
version=${CUDA_TOOLKIT_VERSION:-13.0.2}
envdir=${CUDA_ENV_DIR:-$HOME/.cache/dynaprune-cuda-$version}
target="$repo/target/cuda-$version"
CUDA_TOOLKIT_VERSION=$version scripts/cuda-env.sh "$envdir"
# shellcheck disable=SC1091
source "$envdir/env.sh"
start=$(date +%s)
cargo build --release -p dynaprune-harness --bin dynaprune --features cuda --target-dir "$target"
echo "CUDA $version build: $(( $(date +%s) - start )) s"
carry="$repo/.gpu-carry"
rm -rf "$carry" && mkdir -p "$carry/data/fashion-mnist"
# Stripped, the binary is ~50 MB (candle's PTX is embedded): xz brings it to ~7 MB, so binary and
# data fit the device tool's 64 MiB; run.sh unpacks it.
strip -o "$carry/dynaprune" "$target/release/dynaprune"
xz -T0 -6 "$carry/dynaprune"
fm=""
for d in "$repo/data/fashion-mnist" /usr/share/datasets/fashion-mnist; do
  if [ -f "$d/train-images-idx3-ubyte.gz" ]; then fm=$d; break; fi
done
[ -n "$fm" ] || { echo "Fashion-MNIST not found: run 'cargo xtask fetch fashion-mnist' first" >&2; exit 1; }
cp "$fm"/*-idx?-ubyte.gz "$carry/data/fashion-mnist/"
anchor=${DYNAPRUNE_TORCH_BENCH:-$repo/xtask/torch/torch_resnet_bench.py}
if [ -f "$anchor" ]; then cp "$anchor" "$carry/torch_resnet_bench.py"; else echo "note: $anchor not found: the PyTorch comparison will be skipped" >&2; fi
git -C "$repo" rev-parse HEAD > "$carry/COMMIT"
du -sh "$carry"
size=$(du -sb "$carry" | cut -f1)
if [ "$size" -gt $((60 * 1024 * 1024)) ]; then echo "warning: .gpu-carry is $size bytes; the device tool carries 64 MiB in all" >&2; fi
echo "ready: device run  command='bash scripts/gpu-check/run.sh'  carry=['.gpu-carry']"
