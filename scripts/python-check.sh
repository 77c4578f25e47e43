#!/usr/bin/env bash
# The Python bindings end to end, from a clean clone: a virtual environment with maturin, pytest,
# NumPy and twine from PyPI; the abi3 wheel and the sdist built with maturin; their metadata
# checked (twine); the wheel installed; pytest run against the installed wheel (not the source).
# CI runs it after the Rust tests (.ci/run). About 3 minutes on 2 cores, most of it the build.
#
#   bash scripts/python-check.sh            # venv in target/pyvenv, wheel in target/wheels
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=target/pyvenv
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "maturin>=1.9,<2" "pytest>=7" "numpy>=1.21" "twine>=5"
rm -f target/wheels/dynaprune-*.whl target/wheels/dynaprune-*.tar.gz
"$VENV/bin/maturin" build --release -m crates/pruning-py/Cargo.toml --out target/wheels
"$VENV/bin/maturin" sdist -m crates/pruning-py/Cargo.toml --out target/wheels
"$VENV/bin/twine" check --strict target/wheels/dynaprune-*.whl target/wheels/dynaprune-*.tar.gz
"$VENV/bin/pip" install -q --force-reinstall --no-deps target/wheels/dynaprune-*.whl
cd crates/pruning-py
"../../$VENV/bin/python" -m pytest -q --ignore=tests/distributed tests
