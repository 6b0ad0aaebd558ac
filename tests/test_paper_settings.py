"""The settings that reproduce the authors' published numbers (issue 11): the defaults the paper tables
run with, and the authors' own PEDCC files (``loss.pedcc_path``)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from helpers import compose

from podexp.analysis.items import get_item
from podexp.errors import ConfigError
from podexp.losses import build
from podexp.pedcc import make_pedcc
from podexp.reproduce import fixed_choice

K, D = 4, 6
SGD_ITEMS = ("table1", "table2", "table4", "table5", "table6", "table7", "table9", "fig4", "fig5", "fig6")


@pytest.mark.parametrize("name", ["nac", "pod"])
def test_v_follows_the_projection_norm_by_default(name):
    """The authors' code takes v from the norm of z·Aᵀ; the paper text's reading (latent) is an option."""
    assert build(name, num_classes=K, latent_dim=D).v_norm_source == "projection"
    assert build(name, num_classes=K, latent_dim=D, v_norm_source="latent").v_norm_source == "latent"


@pytest.mark.parametrize("item", SGD_ITEMS)
def test_paper_sgd_tables_reset_momentum_at_each_milestone(item):
    """The authors' code rebuilds SGD at every lr milestone; every SGD experiment of a paper item does too."""
    for experiment in get_item(item).experiments:
        cfg = compose(f"experiment={experiment}")
        assert cfg.optim.name == "sgd" and cfg.sched.name == "multistep", experiment
        assert cfg.optim.reset_momentum_at_milestones is True, experiment


def test_the_default_sgd_keeps_momentum():
    assert compose().optim.reset_momentum_at_milestones is False


@pytest.mark.parametrize("name", ["arcface", "cm"])
def test_arcface_and_cm_use_the_face_setting_everywhere(name):
    """One setting per name: s = 64 with the hard margin, in the loss config and in every experiment
    (docs/losses.md gives the Fashion-MNIST evidence); no experiment overrides it."""
    loss = build(name, num_classes=K, latent_dim=D)
    assert loss.scale == 64.0 and loss.easy_margin is False
    for item in ("table4", "fig4", "fig6"):
        for experiment in get_item(item).experiments:
            assert fixed_choice(experiment, "loss") in (None, "pod", "cosine")
            cfg = compose(f"experiment={experiment}", f"loss={name}")
            assert cfg.loss.scale == 64.0 and cfg.loss.easy_margin is False


def _save(path, array):
    if path.suffix == ".npy":
        np.save(path, array)
    elif path.suffix == ".pt":
        torch.save(torch.as_tensor(array), path)
    else:  # the authors' PEDCC code pickles {class index: centre}
        with open(path, "wb") as handle:
            pickle.dump({k: array[k] for k in range(len(array))}, handle)


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".pkl"])
@pytest.mark.parametrize("name", ["cosine", "nac", "pod", "pedcc_loss"])
def test_pedcc_path_uses_the_file_bit_for_bit(tmp_path, suffix, name):
    centres = make_pedcc(K, D, "iterative", seed=3).numpy()
    path = tmp_path / f"centres{suffix}"
    _save(path, centres)
    loss = build(name, num_classes=K, latent_dim=D, pedcc_path=str(path))
    assert torch.equal(loss.pedcc, torch.as_tensor(centres, dtype=torch.float32))


@pytest.mark.parametrize(
    ("array", "file_name", "message"),
    [
        (np.ones((K + 1, D)) / np.sqrt(D), "c.npy", "holds an array of shape (5, 6)"),
        (np.ones((K, D)), "c.npy", "the centres are invalid (norms deviate from 1"),
        (np.full((K, D), np.nan), "c.npy", "non-finite values"),
        (None, "missing.npy", "no such file"),
        (np.ones((K, D)), "c.txt", "unknown file type '.txt'"),
    ],
)
def test_a_bad_pedcc_file_names_the_key_and_the_fix(tmp_path, array, file_name, message):
    path = tmp_path / file_name
    if array is not None:
        np.save(path, array) if file_name.endswith(".npy") else path.write_text("1 2 3")
    with pytest.raises(ConfigError) as err:
        build("pod", num_classes=K, latent_dim=D, pedcc_path=str(path))
    assert f"loss.pedcc_path={path}" in str(err.value) and message in str(err.value)
    assert "4 x 6 array of unit rows" in str(err.value)
