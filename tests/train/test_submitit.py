"""Cluster launchers: the SLURM launcher config composes; a 2-job sweep runs through submitit locally."""

import json

import pytest
from helpers import CONFIGS, run_train_py


def _launcher(name):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[f"hydra/launcher={name}", "hydra.launcher.partition=gpu" if name == "slurm" else "seed=0"],
            return_hydra_config=True,
        )
    return cfg.hydra.launcher


def test_slurm_launcher_asks_one_gpu_per_job_and_takes_overrides():
    launcher = _launcher("slurm")
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (1, 1, 1)
    assert launcher.partition == "gpu" and launcher.timeout_min > 0 and launcher.array_parallelism >= 1
    assert _launcher("local")._target_.endswith("LocalLauncher")


@pytest.mark.slow
def test_local_submitit_sweep_runs_both_jobs(tmp_path):
    proc = run_train_py(
        "-m",
        "debug=fast",
        "loss=softmax,pod",
        "trainer.epochs=1",
        "hydra/launcher=local",
        f"hydra.sweep.dir={tmp_path}",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {json.loads(path.read_text())["config"]["loss"]["name"]: path for path in tmp_path.glob("*/result.json")}
    assert set(results) == {"softmax", "pod"}
    assert all(json.loads(p.read_text())["status"] == "completed" for p in results.values())
    assert list(tmp_path.glob(".submitit/*/*_log.out"))  # the jobs ran through submitit
