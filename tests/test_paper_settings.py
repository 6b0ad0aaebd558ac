"""The settings that reproduce the authors' published numbers and the originals' recipes (issue 11): the
defaults the paper tables run with, the authors' own PEDCC files (``loss.pedcc_path``), the transformers'
input statistics and regularisation, and MobileNetV2's stem."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
import torch
from helpers import compose

from podexp.analysis.items import get_item
from podexp.compose import loader_config
from podexp.errors import ConfigError
from podexp.losses import LOSSES, build
from podexp.models import build_model
from podexp.optim import build_optimizer
from podexp.pedcc import make_pedcc
from podexp.train.loop import clip_gradients
from podexp.validate import group_values

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
def test_arcface_and_cm_have_one_setting_everywhere(name):
    """One setting per name (s = 30, easy margin: the face setting failed on Fashion-MNIST, docs/losses.md):
    the loss class has no defaults of its own, build() and every paper experiment read the config file."""
    assert all(p.default is inspect.Parameter.empty for p in inspect.signature(LOSSES.get(name)).parameters.values())
    loss = build(name, num_classes=K, latent_dim=D)
    assert loss.scale == 30.0 and loss.easy_margin is True
    for item in ("table4", "fig4", "fig6"):
        for experiment in get_item(item).experiments:
            cfg = compose(f"experiment={experiment}", f"loss={name}")
            assert cfg.loss.scale == 30.0 and cfg.loss.easy_margin is True


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
        (np.ones((K, D)), "c.txt", "use a path ending in .npy, .pt or .pkl."),
    ],
    ids=["wrong shape", "rows not unit", "non-finite", "missing file", "unknown suffix"],
)
def test_a_bad_pedcc_file_names_the_key_and_the_fix(tmp_path, array, file_name, message):
    path = tmp_path / file_name
    if array is not None:
        np.save(path, array) if file_name.endswith(".npy") else path.write_text("1 2 3")
    with pytest.raises(ConfigError) as err:
        build("pod", num_classes=K, latent_dim=D, pedcc_path=str(path))
    assert f"loss.pedcc_path={path}" in str(err.value) and message in str(err.value)
    assert "4 x 6 array of unit rows" in str(err.value) or file_name.endswith(
        ".txt"
    )  # the type check names the suffixes


# -- transformers: the inputs and the recipe their weights were trained with (items 7 and 8) -----------


@pytest.mark.parametrize(
    ("overrides", "mean", "std"),
    [
        (("backbone=vit_b16",), [0.5] * 3, [0.5] * 3),
        (("backbone=vit_b16", "backbone.model=vit_base_patch16_224.orig_in21k"), [0.5] * 3, [0.5] * 3),
        (("backbone=swin_b",), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        (("backbone=vit_b16", "backbone.pretrained=false", "backbone.checkpoint=/w.safetensors"), [0.5] * 3, [0.5] * 3),
    ],
)
def test_pretrained_transformers_get_their_own_input_statistics(overrides, mean, std):
    """timm's pretrained_cfg (metadata only, nothing downloaded) replaces dataset.mean/std."""
    cfg = compose("dataset=cifar100", *overrides)
    data = loader_config(cfg)
    assert list(data.mean) == pytest.approx(mean) and list(data.std) == pytest.approx(std)
    assert list(cfg.dataset.mean) != pytest.approx(mean)  # the dataset's own were different


@pytest.mark.parametrize("overrides", [("backbone=vit_b16", "backbone.pretrained=false"), ("backbone=resnet50",)])
def test_a_random_init_keeps_the_dataset_statistics(overrides):
    cfg = compose("dataset=cifar100", *overrides)
    assert list(loader_config(cfg).mean) == list(cfg.dataset.mean)


def test_grey_images_get_the_averaged_pretrained_statistics():
    data = loader_config(compose("dataset=fashion_mnist", "backbone=swin_b"))
    assert list(data.mean) == pytest.approx([(0.485 + 0.456 + 0.406) / 3])


def test_the_transformer_recipes_clip_and_regularise():
    vit = compose("experiment=table8_vit")
    assert vit.trainer.grad_clip == 1.0 and vit.backbone.drop_path_rate == 0.0
    swin = compose("experiment=table8_swin")
    assert swin.trainer.grad_clip == 5.0 and swin.backbone.drop_path_rate == 0.5
    assert swin.optim.no_decay_norm_bias_position is True
    assert compose().trainer.grad_clip is None


def test_swin_builds_with_stochastic_depth_and_undecayed_norms_biases_and_position_tables():
    cfg = compose("experiment=table8_swin", "backbone.pretrained=false", "dataset.latent_dim=8")
    cfg.backbone.model_kwargs = {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1]}
    model = build_model(cfg.backbone, in_channels=3, stem="cifar", latent_dim=8)
    rates = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) == pytest.approx(0.5)
    loss = build("softmax", num_classes=K, latent_dim=8)
    optimizer = build_optimizer(cfg.optim, model, loss, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    undecayed = {
        names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"] if id(p) in names
    }
    decayed = {
        names[id(p)] for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"] if id(p) in names
    }
    assert any("relative_position_bias_table" in n for n in undecayed)
    assert any(n.endswith("norm1.weight") for n in undecayed) and "fc1.bias" in undecayed
    assert "fc1.weight" in decayed and all(p.ndim > 1 for n, p in model.named_parameters() if n in decayed)


def test_grad_clip_bounds_the_global_gradient_norm():
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    (100 * model(torch.ones(2, 4))).square().sum().backward()
    clip_gradients(optimizer, 1.0)
    assert torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item() == pytest.approx(1.0, rel=1e-5)


# -- MobileNetV2's stem (item 9) --------------------------------------------------------------------


@pytest.mark.parametrize(("size", "dataset"), [(32, "cifar10"), (64, "tiny_imagenet")])
def test_mobilenetv2_runs_unadapted_on_small_images(size, dataset):
    """backbone.stem=imagenet overrides the dataset's stem: the stride-2 first conv of the original network."""
    cfg = compose(f"dataset={dataset}", "backbone=mobilenetv2", "backbone.stem=imagenet")
    assert group_values(cfg, "backbone")[0] == []  # the validator accepts backbone.stem
    model = build_model(cfg.backbone, in_channels=3, stem=cfg.dataset.stem, latent_dim=8)
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert cfg.dataset.stem != "imagenet" and first_conv.stride == (2, 2)
    assert model(torch.randn(2, 3, size, size)).shape == (2, 8)
    adapted = build_model(
        compose(f"dataset={dataset}", "backbone=mobilenetv2").backbone,
        in_channels=3,
        stem=cfg.dataset.stem,
        latent_dim=8,
    )
    assert next(m for m in adapted.modules() if isinstance(m, torch.nn.Conv2d)).stride == (1, 1)
