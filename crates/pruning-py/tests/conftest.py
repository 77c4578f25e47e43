"""Shared fixtures: Debian's Fashion-MNIST (package dataset-fashion-mnist), read with NumPy.

Outside CI the real-data tests skip, saying why, when the files are absent; under CI (CI=true)
they fail instead, so a broken install cannot pass silently (as the Rust suite does)."""

import gzip
import os
import pathlib

import numpy as np
import pytest

FASHION = pathlib.Path(os.environ.get("DYNAPRUNE_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


def _idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {magic:#x})")
    dims = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


@pytest.fixture(scope="session")
def fashion_mnist_files():
    """The four files' paths (skip, or fail under CI, when any is missing)."""
    files = [FASHION / f for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        msg = f"Fashion-MNIST not found ({', '.join(missing)}): apt-get install dataset-fashion-mnist"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return files


@pytest.fixture(scope="session")
def fashion_mnist(fashion_mnist_files):
    xs, ys, xt, yt = (_idx(f) for f in fashion_mnist_files)
    flat = lambda x: (x.reshape(len(x), -1).astype(np.float32) / 255.0 - 0.2860) / 0.3530
    return flat(xs), ys.astype(np.int64), flat(xt), yt.astype(np.int64)
