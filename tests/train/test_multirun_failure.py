"""A sweep where one job fails: the others finish, failed.json records it, aggregate counts it."""

from __future__ import annotations

import json

import pytest
from helpers import FAST, run_train_py

from podexp.analysis.sweeps import collect


@pytest.mark.slow
def test_one_failing_job_does_not_stop_or_lose_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    # d=4 with a simplex PEDCC is impossible for K=10 (K > d+1); d=16 is fine
    done = run_train_py(
        "-m",
        *FAST,
        "trainer.epochs=1",
        "dataset.train_size=128",
        "dataset.test_size=64",
        "dataset.image_size=8",
        "backbone.width=8",
        "loss.pedcc_method=simplex",
        "dataset.latent_dim=4,16",
        f"hydra.sweep.dir={sweep}",
    )
    assert done.returncode == 1, done.stderr[-2000:]  # allow_failures=false: a failed job fails the sweep
    [bad] = sweep.glob("*dataset.latent_dim=4,*")
    assert f"error: 1 of 2 jobs failed, see {bad}/failed.json." in done.stderr
    [good] = sweep.glob("*dataset.latent_dim=16,*")
    failure = json.loads((bad / "failed.json").read_text())
    assert failure["status"] == "failed" and "K=10 > d+1=5" in failure["error"]
    assert not (bad / "result.json").exists()
    assert json.loads((good / "result.json").read_text())["status"] == "completed"
    cells = {("latent_dim=4" if "latent_dim=4," in name else "latent_dim=16"): c for name, c in collect(sweep).items()}
    assert cells["latent_dim=4"].failed == [bad.name] and cells["latent_dim=4"].n == 0
    assert cells["latent_dim=16"].n == 1 and not cells["latent_dim=16"].failed
