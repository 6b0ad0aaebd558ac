"""Bad input is reported before any data is read, every problem at once, each with what to change."""

from __future__ import annotations

import re

import pytest
from helpers import FAST, ROOT, compose, run_train_py

from podexp.data import DATASETS
from podexp.errors import ConfigError
from podexp.validate import group_values, validate_config

# (overrides, fragments the message must contain) -- docs/reliability.md lists the full messages
CASES = {
    "unknown dataset": (["dataset.name=imagenet5"], ["dataset=imagenet5: unknown dataset", "cifar10", "synthetic"]),
    "unknown backbone": (["backbone.name=vgg"], ["backbone=vgg: unknown backbone", "resnet50", "small_cnn"]),
    "unknown loss name": (["loss.name=nope"], ["loss=nope: unknown loss", "pod", "softmax"]),
    "unknown optimiser": (
        ["optim.name=adam"],
        ["optim=adam: unknown optim. Did you mean optim=adamw? Registered: adamw, sgd."],
    ),
    "unknown schedule": (
        ["sched.name=step"],
        ["sched=step: unknown sched. Did you mean sched=multistep? Registered: constant, cosine, multistep."],
    ),
    "batch 0": (["dataset.batch_size=0"], ["dataset.batch_size=0: must be >= 1"]),
    "latent d 0": (["dataset.latent_dim=0"], ["dataset.latent_dim=0: must be >= 1"]),
    "epochs 0": (["trainer.epochs=0"], ["trainer.epochs=0: must be >= 1"]),
    "lr 0": (["optim.lr=0"], ["optim.lr=0: must be > 0"]),
    "negative lr": (["optim.lr=-0.1"], ["optim.lr=-0.1: must be > 0"]),
    "simplex K > d+1": (
        ["loss.pedcc_method=simplex", "dataset.latent_dim=4"],
        ["K=10 > d+1=5", "at least 9", "loss.pedcc_method=auto"],
    ),
    "unknown loss hyper-parameter": (
        ["+loss.gamma=2"],
        ["loss.gamma: loss 'pod' has no option 'gamma'. It accepts: alpha (a number > 0), lam (a number >= 0)"],
    ),
    "epochs not an integer": (["trainer.epochs=abc"], ["trainer.epochs='abc': must be an integer"]),
    "loss hyper-parameter not a number": (["loss.alpha=abc"], ["loss.alpha='abc': must be a number"]),
    "missing dataset folder": (
        ["dataset=mnist", "dataset.root=/nonexistent/mnist", "dataset.download=false"],
        ["dataset.root=/nonexistent/mnist: the folder does not exist", "dataset.download=true"],
    ),
    "missing dataset folder, no download": (
        ["dataset=tiny_imagenet", "dataset.root=/nonexistent/tiny"],
        ["dataset.root=/nonexistent/tiny: the folder does not exist.", "docs/datasets.md"],
    ),
    "missing resume checkpoint": (["resume=/nonexistent/last.pt"], ["no such checkpoint file or run folder"]),
    "unknown on_nan": (["trainer.on_nan=ignore"], ["trainer.on_nan=ignore: use stop or skip"]),
    "unknown device": (["trainer.device=gpu"], ["trainer.device=gpu: use auto, cpu, cuda or cuda:N"]),
    "preemption cadence 0": (["trainer.preempt_check_every=0"], ["trainer.preempt_check_every=0: must be >= 1"]),
    "zero std": (["dataset.std=[0.3,0,0.3]"], ["every value must be a positive number"]),
    "mean per channel": (["dataset.mean=[0.5]"], ["needs one value per channel (3)"]),
    "unknown backbone option": (
        ["+backbone.depth=3"],
        [
            "backbone 'small_cnn' has no option 'depth'",
            "It accepts: stem (cifar, tiny or imagenet or null), width (an integer >= 1).",
        ],
    ),
    "negative momentum": (["optim.momentum=-1"], ["optim.momentum=-1: must be >= 0"]),
    "one class": (["dataset.num_classes=1"], ["dataset.num_classes=1: must be >= 2"]),
    "seed not an integer": (["seed=1.5"], ["seed=1.5: must be an integer"]),
    "unknown compile mode": (
        ["trainer.compile=fast"],
        [
            "trainer.compile=fast: use false, true, default, "
            "reduce-overhead, max-autotune or max-autotune-no-cudagraphs."
        ],
    ),
    # a key added with + is checked like any other: a typo is named with the closest known key
    "misspelt optimiser key": (
        ["+optim.momentun=0.5"],
        ["optim.momentun: optim 'sgd' has no option 'momentun'. Did you mean optim.momentum?"],
    ),
    "misspelt trainer key": (
        ["+trainer.epoch=5"],
        ["trainer.epoch: trainer has no option 'epoch'. Did you mean trainer.epochs?"],
    ),
    "misspelt loss key": (
        ["loss=am_softmax", "+loss.scal=10"],
        ["loss.scal: loss 'am_softmax' has no option 'scal'. Did you mean loss.scale?"],
    ),
    "misspelt dataset key": (
        ["+dataset.batchsize=8"],
        ["dataset.batchsize: dataset 'synthetic' has no option 'batchsize'. Did you mean dataset.batch_size?"],
    ),
    "misspelt top-level key": (["+sed=3"], ["sed: the run config has no option 'sed'. Did you mean seed?"]),
    "option of another optimiser": (["optim.name=adamw"], []),  # sgd's momentum, nesterov, ...: 3 problems
    "nan lr": (["optim.lr=nan"], ["optim.lr=nan: must be a finite number."]),
    "inf loss hyper-parameter": (["loss.alpha=inf"], ["loss.alpha=inf: must be a finite number."]),
    "nan loss hyper-parameter": (["loss.lam=nan"], ["loss.lam=nan: must be a finite number."]),
    "loss choice": (["loss.v_norm_source=features"], ["loss.v_norm_source=features: use latent or projection."]),
    "stem": (["dataset.stem=big"], ["dataset.stem=big: use cifar, tiny or imagenet."]),
    "nan_check_every 0": (["trainer.nan_check_every=0"], ["trainer.nan_check_every=0: must be >= 1."]),
    "val_fraction 1": (["+dataset.val_fraction=1.0"], ["dataset.val_fraction=1.0: must be >= 0 and < 1."]),
    "unknown optimized_metric": (
        ["optimized_metric=val_loss"],
        ["optimized_metric=val_loss: use final_test_acc, best_test_acc, final_train_acc, final_val_acc"],
    ),
    "validation metric without a validation split": (
        ["optimized_metric=best_val_acc"],
        ["optimized_metric=best_val_acc is measured on the validation split", "Set dataset.val_fraction"],
    ),
    # values that can never train (issue 13, item 9)
    "momentum 1": (["optim.momentum=1"], ["optim.momentum=1: must be >= 0 and < 1."]),
    "momentum 5": (["optim.momentum=5"], ["optim.momentum=5: must be >= 0 and < 1."]),
    "inf lr": (["optim.lr=inf"], ["optim.lr=inf: must be a finite number."]),
    "adam beta 1": (
        ["optim=adamw", "optim.betas=[0.9,1.0]"],
        ["optim.betas=[0.9, 1.0]: 1.0 is not >= 0 and < 1; must be a list of 2 numbers >= 0 and < 1."],
    ),
    "milestones not increasing": (
        ["sched.milestones=[60,30]"],
        ["sched.milestones=[60, 30]: must be a list of integers >= 0, each larger than the one before"],
    ),
    "milestone not an integer": (["sched.milestones=[1.5]"], ["sched.milestones=[1.5]: 1.5 is not an integer"]),
    "milestone not a number": (["sched.milestones=[a]"], ["sched.milestones=['a']: 'a' is not an integer"]),
    "test_fraction 1.5": (
        ["dataset=digits", "dataset.test_fraction=1.5"],
        ["dataset.test_fraction=1.5: must be > 0 and < 1."],
    ),
    "test_fraction 0": (
        ["dataset=digits", "dataset.test_fraction=0"],
        ["dataset.test_fraction=0: must be > 0 and < 1."],
    ),
    "cosine margin 2": (["loss=am_softmax", "loss.margin=2"], ["loss.margin=2: must be >= 0 and < 2."]),
    "angle margin 4": (["loss=arcface", "loss.margin=4"], ["loss.margin=4: must be >= 0 and < 3.1416."]),
    "nan pod alpha": (["loss.alpha=nan"], ["loss.alpha=nan: must be a finite number."]),
    "inf v0": (["loss.v0=inf"], ["loss.v0=inf: must be a finite number."]),
    "latent d 1 for K > 2 PEDCC centres": (
        ["dataset.latent_dim=1"],
        [
            "dataset.latent_dim=1: PEDCC centres are unit vectors, and in d=1 there are only two (+1 and -1), so "
            "K=10 classes cannot be told apart",
            "any d >= 2 works",
            "loss.allow_crowded_pedcc=true",
        ],
    ),
    "max_skip_fraction above 1": (
        ["trainer.max_skip_fraction=1.5"],
        ["trainer.max_skip_fraction=1.5: must be >= 0 and <= 1."],
    ),
}
PROBLEM_COUNT = {"option of another optimiser": 3}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_bad_input_gets_a_message_that_says_what_to_change(case):
    overrides, fragments = CASES[case]
    with pytest.raises(ConfigError) as err:
        validate_config(compose(*FAST, *overrides))
    for fragment in fragments:
        assert fragment in str(err.value)
    assert f"{PROBLEM_COUNT.get(case, 1)} problem(s)" in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate_config(
            compose(
                *FAST, "optim.lr=0", "trainer.epochs=abc", "dataset.batch_size=-4", "+loss.gamma=2", "backbone.name=vgg"
            )
        )
    message = str(err.value)
    assert message.startswith("The configuration has 5 problem(s):")
    assert len([line for line in message.splitlines() if line.startswith("  - ")]) == 5


def test_an_optimiser_does_not_take_another_ones_options():
    with pytest.raises(ConfigError) as err:
        validate_config(compose(*FAST, "optim.name=adamw"))
    for key in ("momentum", "nesterov", "reset_momentum_at_milestones"):
        assert f"optim.{key}: optim 'adamw' has no option '{key}'." in str(err.value)


def test_valid_configs_pass():
    for overrides in (
        [],
        ["experiment=demo"],
        ["loss=softmax", "optim=swin_adamw", "sched=swin_cosine"],
        ["dataset=cifar100"],
        ["trainer.compile=reduce-overhead", "trainer.progress=false"],
        ["experiment=fig6_alpha", "debug=smoke"],
        ["dataset=imagenet100", "debug=smoke"],
        ["dataset=tiny_imagenet", "debug=smoke"],
        ["+label.backbone=vit_b16"],
        ["dataset.latent_dim=2", "dataset.num_classes=5"],  # K > d+1 with d >= 2: Fig. 6, iterative PEDCC
        ["dataset.latent_dim=1", "dataset.num_classes=2"],  # +1 and -1
        ["dataset.latent_dim=1", "loss.allow_crowded_pedcc=true"],  # the explicit override
        ["dataset.latent_dim=1", "loss=softmax"],  # no PEDCC: a learnt classifier with biases
    ):
        validate_config(compose(*FAST, *overrides))


def test_a_smoke_stand_in_still_reports_keys_no_dataset_knows():
    """debug=smoke leaves the replaced dataset's keys unread, but a typo is still one."""
    with pytest.raises(ConfigError, match="dataset.cahce: dataset 'synthetic' has no option 'cahce'"):
        validate_config(compose(*FAST, "dataset=tiny_imagenet", "debug=smoke", "+dataset.cahce=false"))


@pytest.mark.slow
def test_train_py_prints_one_paragraph_before_reading_data(tmp_path):
    done = run_train_py(
        *FAST,
        "dataset=mnist",
        f"dataset.root={tmp_path / 'no_mnist'}",
        "dataset.download=false",
        "optim.lr=-1",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "error: The configuration has 2 problem(s):" in done.stderr
    assert "optim.lr=-1: must be > 0" in done.stderr and "the folder does not exist" in done.stderr
    assert "failed.json" in {p.name for p in (tmp_path / "run").iterdir()}


@pytest.mark.slow
def test_hydra_unknown_group_option_lists_the_valid_ones(tmp_path):
    done = run_train_py(*FAST, "loss=nope", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Could not find 'loss/nope'" in done.stderr and "Available options in 'loss'" in done.stderr
    assert "\tpod\n" in done.stderr


@pytest.mark.parametrize("name", DATASETS.available())
def test_every_dataset_config_matches_its_registered_reader(name):
    """Each configs/dataset file holds only keys its reader (or the common dataset fields) accepts."""
    problems, values = group_values(compose(f"dataset={name}"), "dataset")
    assert problems == [] and values["num_classes"] >= 2


def test_reliability_table_shows_the_messages_the_validator_prints():
    """docs/reliability.md's row for each case above quotes the message as printed (problems joined by " / ")."""
    rows = [line.split(" | ") for line in (ROOT / "docs" / "reliability.md").read_text().splitlines()]
    quoted = {}
    for cells in rows:
        found = re.search(r"test_each_bad_input_gets_a_message_that_says_what_to_change\[([^\]]+)\]`", cells[-1])
        if len(cells) == 5 and found and found.group(1) in CASES:
            quoted[found.group(1)] = cells[3]
    assert len(quoted) >= 40, "the table lost its rows"
    for case, shown in quoted.items():
        with pytest.raises(ConfigError) as err:
            validate_config(compose(*FAST, *CASES[case][0]))
        printed = " / ".join(line.strip()[2:] for line in str(err.value).splitlines()[1:]).replace("|", "\\|")
        assert shown == printed, f"docs/reliability.md row for {case!r} is stale"
