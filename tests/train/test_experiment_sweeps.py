"""The paper's experiment files are sweeps: `python train.py experiment=table9` runs them without -m."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.types import RunMode

from podexp.defaults import CONFIG_DIR
from podexp.reproduce import run_in_process, sweep_params

PAPER_EXPERIMENTS = sorted(
    p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml") if p.stem.startswith(("table", "fig"))
)


@pytest.mark.parametrize("experiment", PAPER_EXPERIMENTS)
def test_every_paper_experiment_file_runs_in_multirun_mode(experiment):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN and sweep_params(experiment)


def test_an_experiment_without_dash_m_runs_its_sweep_jobs(tmp_path):
    # the command line pins every swept key to one value: one job, still laid out as a sweep
    args = ["experiment=table9", "debug=smoke", "dataset=cifar10", "seed=0", f"hydra.sweep.dir={tmp_path}"]
    assert run_in_process(args) == 0
    result = json.loads((tmp_path / "dataset=cifar10,debug=smoke,seed=0" / "result.json").read_text())
    assert result["status"] == "completed" and (tmp_path / "multirun.yaml").exists()
