"""What a W&B run of podexp holds (a fake wandb module records the calls): group per configuration, job type,
the Hydra choices as top-level keys, the accuracies in the summary, running metrics every N steps."""

from __future__ import annotations

import sys
import types

import pytest
from omegaconf import OmegaConf

from podexp.reproduce import run_in_process
from podexp.train.loggers import WANDB_GROUP_LIMIT, wandb_group


class FakeRun:
    def __init__(self, runs: list, **settings):
        self.settings, self.logged, self.summary, self.id = settings, [], {}, f"run{len(runs)}"
        runs.append(self)

    def define_metric(self, *args, **kwargs):
        pass

    def log(self, row, **kwargs):
        self.logged.append(dict(row))

    def finish(self, exit_code=0):
        self.exit_code = exit_code


@pytest.fixture
def runs(monkeypatch):
    started: list[FakeRun] = []
    fake = types.ModuleType("wandb")
    fake.init = lambda mode=None, **settings: FakeRun(started, **settings)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    return started


def test_seeds_of_one_configuration_share_a_group_and_the_run_is_filterable(tmp_path, runs):
    args = ["-m", "experiment=demo", "trainer.epochs=2", "+dataset.val_fraction=0.2", "logger=wandb"]
    assert run_in_process([*args, "logger.log_every_n_steps=5", "seed=0,1", f"hydra.sweep.dir={tmp_path}"]) == 0
    assert len(runs) == 2
    groups = {run.settings["group"] for run in runs}
    assert groups == {"demo:+dataset.val_fraction=0.2,experiment=demo,trainer.epochs=2"}  # no seed, no logger
    for run in runs:
        config = run.settings["config"]
        assert run.settings["job_type"] == "train"
        assert config["dataset_choice"] == "digits" and config["loss_choice"] == "pod"
        assert config["experiment_choice"] == "demo" and config["backbone_choice"] == "small_cnn"
        assert {"final_test_acc", "best_val_acc", "test_acc_at_best_val"} <= set(run.summary)
        steps = [row for row in run.logged if "global_step" in row]
        epochs = [row for row in run.logged if "epoch" in row]
        assert [row["global_step"] for row in steps] == [5, 10, 15, 22, 27, 32]  # 17 steps an epoch
        assert all(isinstance(row["step/train_loss"], float) for row in steps) and len(epochs) == 2


def test_an_explicit_group_wins_and_long_groups_are_shortened():
    assert wandb_group(OmegaConf.create({"group": "mine"}), "table4", ["loss=pod"]) == "mine"
    auto = OmegaConf.create({"group": None})
    assert wandb_group(auto, "table4", ["loss=pod", "seed=2", "logger=wandb"]) == "table4:loss=pod"
    assert wandb_group(auto, "default", []) == "default:(defaults)"
    long = wandb_group(auto, "x", [f"+label.k{i}=/some/path/{i}" for i in range(20)])
    assert len(long) <= WANDB_GROUP_LIMIT and "/" not in long
