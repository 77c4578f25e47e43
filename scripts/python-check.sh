#!/usr/bin/env bash
# The Python bindings end to end, from a clean clone: a virtual environment with maturin, pytest,
# NumPy and twine from PyPI; the abi3 wheel and the sdist built with maturin; their metadata
# checked (twine); the wheel installed; its type stubs checked against the compiled module
# (mypy's stubtest) and a typed example checked with `mypy --strict`; pytest run against the
# installed wheel (not the source).
# CI runs it after the Rust tests (.ci/run). About 3 minutes on 2 cores, most of it the build.
#
#   bash scripts/python-check.sh            # venv in target/pyvenv, wheel in target/wheels
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=target/pyvenv
VENV_ABS="$(pwd)/$VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "maturin>=1.9,<2" "pytest>=7" "numpy>=1.21" "twine>=5" "mypy>=1.10"
rm -f target/wheels/dynaprune-*.whl target/wheels/dynaprune-*.tar.gz
"$VENV/bin/maturin" build --release -m crates/pruning-py/Cargo.toml --out target/wheels
"$VENV/bin/maturin" sdist -m crates/pruning-py/Cargo.toml --out target/wheels
"$VENV/bin/twine" check --strict target/wheels/dynaprune-*.whl target/wheels/dynaprune-*.tar.gz
"$VENV/bin/pip" install -q --force-reinstall --no-deps target/wheels/dynaprune-*.whl
cd crates/pruning-py
# The stubs (python/dynaprune/_dynaprune.pyi) against the module the wheel installed: every
# class, method, argument and default must exist on both sides. Then a loop written against the
# public API, type-checked strictly through the stubs.
"$VENV_ABS/bin/python" -m mypy.stubtest dynaprune._dynaprune
"$VENV_ABS/bin/python" -m mypy --strict tests/typed_usage.py
"$VENV_ABS/bin/python" tests/typed_usage.py >/dev/null
"../../$VENV/bin/python" -m pytest -q --ignore=tests/distributed tests
