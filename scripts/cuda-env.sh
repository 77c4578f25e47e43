#!/usr/bin/env bash
# Prepares a CUDA 13.2 build environment for `--features cuda` on a machine with no GPU and no
# system CUDA toolkit (the team's tested recipe, pinned; Debian 12, Rust 1.95, candle 0.11.1).
#
#   scripts/cuda-env.sh [DIR]          (DIR defaults to $HOME/.cache/dynaprune-cuda13)
#   source DIR/env.sh && cargo build --release -p dynaprune-harness --features cuda
#   (or simply: cargo xtask cuda-check)
#
# - nvcc and the CUDA libraries come from PyPI's CUDA 13 wheels (pinned: cuda-toolkit 13.2.2);
#   the cu12 "nvidia-cuda-nvcc-cu12" wheels ship no nvcc binary.
# - The wheels carry only versioned sonames and no libcuda, but candle links -lcuda -lnvrtc
#   -lcurand -lcublas -lcublasLt -lcudart: we add unversioned symlinks, and a libcuda.so to link
#   against, extracted (not installed) from Debian's non-free package libcuda1 through a private
#   apt configuration.
# - cudarc runs `nvcc --version` (PATH) and searches CUDA_HOME; candle's kernel build needs
#   CUDA_COMPUTE_CAP when there is no nvidia-smi: 90 = Hopper (H100/H200); the PTX is then sm_90a
#   and needs a driver for CUDA >= 13.2.
# At run time on a GPU machine use that machine's driver libcuda and only
# LD_LIBRARY_PATH=DIR/cu13/lib.
# - The driver must be at least as new as the toolkit: candle's kernels are PTX, which a driver
#   refuses to load when a newer nvcc wrote it. CUDA_TOOLKIT_VERSION overrides the pin, e.g.
#   CUDA_TOOLKIT_VERSION=13.0.2 for a driver of the 580 series (CUDA 13.0), which is what the
#   lent H200 machines ran (scripts/gpu-check/prepare.sh does this).
set -euo pipefail
CUDA_TOOLKIT_VERSION=${CUDA_TOOLKIT_VERSION:-13.2.2}
dir=${1:-$HOME/.cache/dynaprune-cuda13}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ ! -x "$dir/venv/bin/python" ]; then python3 -m venv "$dir/venv"; fi
"$dir/venv/bin/pip" install -q "cuda-toolkit[nvcc,crt,nvvm,cudart,cublas,curand,nvrtc,cccl]==${CUDA_TOOLKIT_VERSION}"
cu=$(ls -d "$dir"/venv/lib/python3*/site-packages/nvidia/cu13 | head -1)
ln -sfn "$cu" "$dir/cu13"
cd "$cu/lib"
for l in cudart cublas cublasLt nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done
ln -sf libcurand.so.10 libcurand.so
if [ ! -e libcuda.so ]; then
  apt="$dir/apt"; mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts"
  # The machine's own Debian source, with the non-free components added.
  sed -E 's/^Components:.*/Components: main contrib non-free non-free-firmware/' \
    /etc/apt/sources.list.d/debian.sources > "$apt/parts/debian.sources"
  opt=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/parts" -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache")
  apt-get "${opt[@]}" -qq update
  (cd "$apt" && apt-get "${opt[@]}" -qq download libcuda1 && dpkg-deb -x libcuda1_*.deb libcuda1)
  mkdir -p stubs
  cp "$(ls "$apt"/libcuda1/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.* | head -1)" stubs/libcuda.so
  ln -sf stubs/libcuda.so libcuda.so
fi
cat > "$dir/env.sh" <<ENV
export PATH="$cu/bin:\$PATH" CUDA_HOME="$cu" CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
ENV
echo "CUDA ${CUDA_TOOLKIT_VERSION} build environment ready: source $dir/env.sh"
