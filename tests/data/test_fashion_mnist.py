"""Real Fashion-MNIST as a documented source: a distribution's copy (Debian's dataset-fashion-mnist in
/usr/share/datasets/fashion-mnist) is found when dataset.root holds nothing, and experiment=fmnist trains on a
fixed per-class subset that fits a CPU."""

from pathlib import Path

import pytest
import torch
from helpers import compose, write_fake_mnist

from podexp.data import build_loaders
from podexp.losses import available
from podexp.reproduce import sweep_params
from podexp.validate import validate_config

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def _loaders(*overrides):
    cfg = compose(*overrides, "dataset.batch_size=8")
    return build_loaders(cfg.dataset, seed=0, device=torch.device("cpu"))


def test_the_system_copy_is_used_when_root_holds_nothing(tmp_path):
    system = write_fake_mnist(tmp_path / "system", n_train=40, n_test=20)
    loaders = _loaders(
        "dataset=fashion_mnist",
        f"dataset.root={tmp_path / 'empty'}",
        "dataset.download=false",
        f"dataset.system_root={system}",
    )
    assert len(loaders.train.labels) == 40 and len(loaders.test.labels) == 20
    assert loaders.class_names[-1] == "Ankle boot"


def test_a_missing_root_is_no_config_error_when_the_system_copy_exists(tmp_path):
    system = write_fake_mnist(tmp_path / "system", n_train=10, n_test=10)
    validate_config(
        compose(
            "dataset=fashion_mnist",
            f"dataset.root={tmp_path / 'absent'}",
            "dataset.download=false",
            f"dataset.system_root={system}",
        )
    )


def test_per_class_subsets_keep_the_first_images_of_each_class(tmp_path):
    folder = write_fake_mnist(tmp_path / "fm", n_train=300, n_test=200)
    full = _loaders("dataset=fashion_mnist", f"dataset.root={folder}", "dataset.download=false")
    part = _loaders(
        "dataset=fashion_mnist",
        f"dataset.root={folder}",
        "dataset.download=false",
        "+dataset.train_per_class=5",
        "+dataset.test_per_class=3",
    )
    assert torch.bincount(part.train.labels, minlength=10).tolist() == [5] * 10
    assert torch.bincount(part.test.labels, minlength=10).tolist() == [3] * 10
    for k in range(10):  # the first ones, in file order
        first = full.train.images[full.train.labels == k][:5]
        assert torch.equal(part.train.images[part.train.labels == k], first)


def test_the_fmnist_experiment_is_the_real_data_cpu_run():
    cfg = compose("experiment=fmnist")
    assert cfg.dataset.name == "fashion_mnist" and cfg.backbone.name == "small_cnn"
    assert cfg.dataset.system_root == str(DEBIAN) and cfg.trainer.device == "cpu"
    assert list(cfg.sched.milestones) and max(cfg.sched.milestones) < cfg.trainer.epochs  # lr decays
    assert sorted(sweep_params("fmnist")["loss"]) == sorted(available())  # all twelve losses


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_debian_package_is_found_by_default(tmp_path):
    loaders = _loaders("dataset=fashion_mnist", f"data_root={tmp_path}", "dataset.download=false")
    assert len(loaders.train.labels) == 60_000 and len(loaders.test.labels) == 10_000
