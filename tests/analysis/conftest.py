"""Fixtures for the analysis tests: fake sweep folders as train.py -m writes them."""

import json
from pathlib import Path

import pytest
import yaml


def fake_job(
    sweep: Path, overrides: dict, accuracy: float | None, config: dict | None = None, metrics: list[dict] | None = None
) -> Path:
    """A job folder as train.py -m writes it; ``accuracy=None`` leaves it unfinished."""
    job = sweep / ",".join(f"{k}={v}" for k, v in overrides.items())
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"{k}={v}" for k, v in overrides.items()]))
    base = {
        "dataset": {"name": overrides.get("dataset", "synthetic")},
        "loss": {"name": overrides.get("loss", "pod")},
        "logger": {"name": "csv"},
        "seed": int(overrides.get("seed", 0)),
    }
    (job / "config.yaml").write_text(yaml.safe_dump({**base, **(config or {})}))
    if accuracy is not None:
        (job / "result.json").write_text(json.dumps({"final_test_acc": accuracy}))
    if metrics is not None:
        (job / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    return job


@pytest.fixture(name="fake_job")
def fake_job_fixture():
    """``fake_job(sweep, overrides, accuracy, config=None, metrics=None)`` -> the job folder."""
    return fake_job
