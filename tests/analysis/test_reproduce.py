"""The driver's command lines: the paper's sweep, the smoke substitutions, missing configs."""

import sys

import pytest
from helpers import PAPER_LOSSES

from podexp import reproduce
from podexp.analysis.items import ITEMS
from podexp.reproduce import command_line, fixed_choice, sweep_params


def _args(command):
    return dict(arg.split("=", 1) for arg in command[4:] if "=" in arg)


def test_every_item_names_existing_experiment_files():
    for item in ITEMS.values():
        for experiment in item.experiments:
            assert reproduce.experiment_file(experiment).exists(), experiment
            assert sweep_params(experiment)["seed"] == (["0"] if experiment.startswith("fig6") else ["0", "1", "2"])


def test_paper_command_pins_the_papers_runs(tmp_path):
    command = command_line("table4", tmp_path, smoke=False, extra=["logger=wandb"])
    assert command[:4] == [sys.executable, "-m", "podexp.train", "-m"]
    args = _args(command)
    assert args["experiment"] == "table4" and args["hydra.sweep.dir"] == str(tmp_path)
    assert args["loss"].split(",") == list(PAPER_LOSSES[:10])
    assert args["seed"] == "0,1,2" and command[-1] == "logger=wandb"
    assert "debug" not in args


def test_smoke_keeps_one_seed_and_relabels_backbones(tmp_path):
    args = _args(command_line("table7", tmp_path, smoke=True, extra=[]))
    assert args["debug"] == "smoke" and args["seed"] == "0" and args["backbone"] == "small_cnn"
    assert args["+label.backbone"] == "resnet50,densenet121,mobilenetv2"
    assert fixed_choice("table8_vit", "backbone") == "vit_b16"
    assert _args(command_line("table8_vit", tmp_path, smoke=True, extra=[]))["+label.backbone"] == "vit_b16"


def test_values_without_a_config_file_are_dropped_with_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        reproduce,
        "existing",
        lambda key, values: ([v for v in values if v != "nac"], ["nac"] if "nac" in values else []),
    )
    args = _args(command_line("table5", tmp_path, smoke=False, extra=[]))
    assert args["loss"] == "pod"
    assert "nac" in capsys.readouterr().err
    monkeypatch.setattr(reproduce, "existing", lambda key, values: ([], values) if key == "loss" else (values, []))
    assert command_line("table5", tmp_path, smoke=False, extra=[]) is None


def test_existing_checks_config_files():
    assert reproduce.existing("loss", ["pod", "no_such_loss"]) == (["pod"], ["no_such_loss"])
    assert reproduce.existing("seed", ["0", "1"]) == (["0", "1"], [])


def test_unknown_item_is_one_paragraph_and_status_2(capsys):
    assert reproduce.main(["table10", "--from", "x"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "table10" in error and "table4" in error


@pytest.mark.parametrize("experiment", sorted({e for item in ITEMS.values() for e in item.experiments}))
def test_every_experiment_composes_with_its_first_sweep_point(experiment):
    from helpers import compose

    from podexp.train.loggers import wandb_group

    item = next(i for i in ITEMS.values() if experiment in i.experiments)
    first = [f"{k}={v[0]}" for k, v in sweep_params(experiment).items()]
    existing_first = [o for o in first if reproduce.existing(o.split("=")[0], [o.split("=")[1]])[0]]
    cfg = compose(f"experiment={experiment}", "logger=wandb", *existing_first)
    assert cfg.name == item.name and list(cfg.logger.tags) == [item.name]
    group = wandb_group(cfg.logger, cfg.name, [f"experiment={experiment}", *existing_first])
    assert group.startswith(f"{item.name}:") and f"experiment={experiment}" in group and "seed=" not in group
    if experiment.startswith("fig6"):
        assert (cfg.dataset.name, list(cfg.dataset.classes), cfg.dataset.latent_dim) == ("mnist", [0, 1, 2, 3, 4], 2)
    if experiment == "table8_swin":
        assert (cfg.optim.name, cfg.sched.name, cfg.trainer.epochs) == ("adamw", "cosine", 300)


def test_build_from_finished_sweeps_without_training(tmp_path, fake_job, capsys):
    sweep = tmp_path / "table4"
    fake_job(sweep, {"loss": "cosine", "dataset": "cifar10", "seed": 0}, 93.0)
    reports = tmp_path / "reports"
    status = reproduce.main(["table4", "--from", str(sweep), "--reports", str(reports), "--check", "5"])
    assert status == 1  # 39 cells have no run
    assert "cosine | 93.00 ± 0.00 (n=1)" in (reports / "table4" / "table4.md").read_text()


def test_table3_matches_the_dataset_configs(tmp_path):
    assert reproduce.main(["table3", "--reports", str(tmp_path), "--check", "0"]) == 0


def test_gda_options_reach_the_table_builder(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(
        reproduce, "build_item", lambda name, sweeps, reports, check, options: seen.append(options) or 0
    )
    assert reproduce.main(["table9", "--from", str(tmp_path)]) == 0
    assert (
        reproduce.main(["table9", "--from", str(tmp_path), "--gda-covariance", "shared", "--gda-shrinkage", "0.1"]) == 0
    )
    assert [(o.gda_covariance, o.gda_shrinkage) for o in seen] == [("per_class", "ledoit_wolf"), ("shared", 0.1)]
    with pytest.raises(SystemExit):
        reproduce.main(["table9", "--from", str(tmp_path), "--gda-shrinkage", "2"])
