#!/usr/bin/env bash
# The Python bindings under real torch.distributed: 2 gloo processes started by torchrun (and by
# accelerate launch), as a data-parallel job would be (crates/pruning-py/tests/distributed).
#
# torch is never a build dependency: it lives in its own virtual environment, outside the clone
# and kept between runs ($DYNAPRUNE_TORCH_VENV, default ~/.cache/dynaprune/torch-venv), so CI pays
# the ~5.5 GB install (about a minute here) once per machine and a few seconds after that. The
# dynaprune wheel is the one scripts/python-check.sh built (target/wheels), built here if absent.
# About 3 minutes on 2 cores with the environment in place.
#
#   bash scripts/python-distributed-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${DYNAPRUNE_TORCH_VENV:-$HOME/.cache/dynaprune/torch-venv}
# Pinned: the versions the tests and the README's measurements ran with.
TORCH="torch==2.15.0"
ACCELERATE="accelerate==1.16.0"
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
start=$(date +%s)
"$VENV/bin/pip" install -q --disable-pip-version-check "$TORCH" "$ACCELERATE" "numpy>=1.21" "pytest>=7"
echo "torch environment ready in $(( $(date +%s) - start )) s ($VENV)"
if ! ls target/wheels/dynaprune-*.whl >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "maturin>=1.9,<2"
  "$VENV/bin/maturin" build --release -m crates/pruning-py/Cargo.toml --out target/wheels
fi
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps target/wheels/dynaprune-*.whl
cd crates/pruning-py
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/distributed
