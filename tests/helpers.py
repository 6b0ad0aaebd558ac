"""Test helpers: compose the real config tree and train in-process or through train.py."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import podexp  # noqa: F401  (registers the resolver configs/hydra/default.yaml uses)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def compose(*overrides: str):
    """The resolved config ``train.py`` would see with these command-line overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=list(overrides))


def train_in_process(out_dir: Path, *overrides: str) -> dict:
    """Train the composed config into ``out_dir`` without Hydra's runtime (fast, for unit-level runs)."""
    from podexp.train.run import train

    return train(compose(*overrides), Path(out_dir))


def build_trainer(cfg, device):
    """A ``Trainer`` (no callbacks) over the run ``cfg`` describes, built as ``train.py`` builds it."""
    from podexp.compose import build_run
    from podexp.train.loop import Trainer

    run = build_run(cfg, device)
    return Trainer(run.model, run.loss, run.loaders, run.optimizers, run.schedulers, run.settings, device=device)


def run_train_py(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600):
    """Run ``python train.py ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


FAST = ("debug=fast",)
# The paper's losses in the order of its tables (Table 4 compares the first ten)
PAPER_LOSSES = (
    "softmax",
    "center",
    "am_softmax",
    "arcface",
    "cm",
    "cot",
    "pedcc_loss",
    "cosine",
    "nac",
    "pod",
    "lsoftmax",
    "wsoftmax",
)
# 128 training images of 8x8 in batches of 32 (4 steps per epoch), a width-8 small_cnn: runs in about a second
TINY_DATA = (
    "dataset.train_size=128",
    "dataset.test_size=64",
    "dataset.image_size=8",
    "dataset.batch_size=32",
    "backbone.width=8",
)


def needs_cpp_compiler(test):
    """Skip ``test`` where torch.compile cannot build its CPU kernels (inductor calls a C++ compiler)."""
    import pytest

    found = shutil.which("g++") or shutil.which("c++")
    return pytest.mark.skipif(not found, reason="inductor on the CPU needs a C++ compiler")(test)


def write_idx(path: Path, array, gz: bool = False) -> Path:
    """Write a uint8 array as an idx file (the MNIST format), written independently of podexp's reader."""
    import gzip
    import struct

    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    payload = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    path = Path(str(path) + ".gz") if gz else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_fake_mnist(folder: Path, n_train: int = 200, n_test: int = 100, gz: bool = False, seed: int = 0) -> Path:
    """Four idx files of learnable 28x28 images: class k is a bright square at a class-specific spot."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            r, c = 2 + 8 * (k // 4), 2 + 6 * (k % 4)
            images[i, r : r + 6, c : c + 6] = 250
        return images, labels

    (tx, ty), (vx, vy) = split(n_train), split(n_test)
    write_idx(folder / "train-images-idx3-ubyte", tx, gz)
    write_idx(folder / "train-labels-idx1-ubyte", ty, gz)
    write_idx(folder / "t10k-images-idx3-ubyte", vx, gz)
    write_idx(folder / "t10k-labels-idx1-ubyte", vy, gz)
    return folder


def load_script(name: str):
    """``scripts/<name>.py`` imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def positive(value) -> bool:
    """A measured figure: a finite float above zero."""
    return isinstance(value, float) and math.isfinite(value) and value > 0
