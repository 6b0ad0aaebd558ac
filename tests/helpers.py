"""Test helpers: compose the real config tree and train in-process or through train.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def run_train_py(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600):
    """Run ``python train.py ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


FAST = ("debug=fast",)
