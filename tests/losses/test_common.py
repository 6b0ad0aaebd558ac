"""Properties every registered loss shares (a newly registered loss is tested by the same code): it is
built from its config file's values alone, keeps them, has finite values and gradients at
cos theta = +-1 and under bf16 autocast, and ``predict`` gives (B, K) margin-free scores."""

import pytest
import torch
from helpers import PAPER_LOSSES
from omegaconf import OmegaConf
from torch import nn

from podexp.defaults import config_file
from podexp.errors import ConfigError
from podexp.losses import LOSSES, available, build
from podexp.registry import EMPTY

K, D, B = 5, 8, 6
ALL = available()


def class_directions(loss):
    """The class direction each loss compares z with: its (learnt) weight or its fixed PEDCC."""
    return (loss.pedcc if hasattr(loss, "pedcc") else loss.weight).detach()


def test_every_loss_of_the_paper_is_registered():
    assert set(PAPER_LOSSES) <= set(available())


@pytest.mark.parametrize("name", ALL)
def test_built_by_name_with_the_config_files_values_and_no_other_default(name):
    """configs/loss/<name>.yaml is the one home of the defaults: the signature holds none, the file holds
    every hyper-parameter (no more), and ``build(name, K, d)`` gives a loss that keeps exactly those."""
    written = OmegaConf.to_container(OmegaConf.load(config_file("loss", name)))
    assert written.pop("name") == name
    signature = LOSSES.signature(name)
    assert set(written) == set(signature)
    assert all(option.default is EMPTY for option in signature.values()), "a default outside the config file"
    loss = build(name, num_classes=K, latent_dim=D)
    assert {key: getattr(loss, key) for key in written} == written
    for key in written:
        assert LOSSES.problems(name, {**written, key: {"not": "a value"}}), f"loss.{key} accepts anything"


@pytest.mark.parametrize("name", ALL)
def test_a_misspelt_or_out_of_range_hyper_parameter_is_refused_by_name(name):
    key = next(iter(LOSSES.signature(name)))
    with pytest.raises(ConfigError) as err:
        build(name, num_classes=K, latent_dim=D, **{key + "x": 1.0})
    assert f"loss.{key}x: loss '{name}' has no option '{key}x'. Did you mean loss.{key}?" in str(err.value)
    with pytest.raises(ConfigError, match="num_classes=1: must be >= 2"):
        build(name, num_classes=1, latent_dim=D)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["parallel", "antiparallel"])
def test_finite_loss_and_gradients_at_cosine_plus_minus_one(name, sign):
    torch.manual_seed(0)
    loss = build(name, num_classes=K, latent_dim=D)
    if name == "pedcc_loss":
        loss.eval()  # running statistics (0, 1): BatchNorm keeps z's direction, so cos = +-1 exactly
    y = torch.arange(B) % K
    z = (sign * 3.0 * class_directions(loss)[y]).requires_grad_(True)
    for objective in range(loss.num_objectives):
        value = loss(z, y, objective=objective)
        value.backward()
        assert torch.isfinite(value), (name, objective)
        assert torch.isfinite(z.grad).all(), (name, objective)
        for p in loss.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), (name, objective)


@pytest.mark.parametrize("name", ALL)
def test_finite_and_fp32_under_bf16_autocast(name):
    torch.manual_seed(0)
    loss = build(name, num_classes=K, latent_dim=D)
    head = nn.Linear(4, D)
    x, y = torch.randn(B, 4), torch.arange(B) % K
    for objective in range(loss.num_objectives):
        head.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = head(x)
            assert z.dtype == torch.bfloat16
            value = loss(z, y, objective=objective)
        assert value.dtype == torch.float32
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(head.weight.grad).all(), (name, objective)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            scores = loss.predict(head(x))
        assert scores.dtype == torch.float32 and torch.isfinite(scores).all()


@pytest.mark.parametrize("name", ALL)
def test_predict_shape_and_no_gradient(name):
    loss = build(name, num_classes=K, latent_dim=D)
    scores = loss.predict(torch.randn(B, D, requires_grad=True))
    assert scores.shape == (B, K) and not scores.requires_grad


# -- library misuse (issue 13, item 7): a sentence naming z, y, num_classes, latent_dim ------------------
MISUSE = {
    "label -1": (lambda z: (z, torch.tensor([0, 1, -1, 2, 3, 4])), ValueError, "in [0, num_classes=5); found -1"),
    "label K": (lambda z: (z, torch.tensor([0, 1, 5, 2, 3, 4])), ValueError, "in [0, num_classes=5); found 5"),
    "empty batch": (lambda z: (z[:0], torch.zeros(0, dtype=torch.long)), ValueError, "the batch is empty"),
    "float labels": (lambda z: (z, torch.zeros(B)), TypeError, "y must hold integer class indices"),
    "one-hot labels": (
        lambda z: (z, torch.eye(K, dtype=torch.long)[torch.arange(B) % K]),
        ValueError,
        "y has shape (6, 5); expected (6,)",
    ),
    "wrong latent_dim": (lambda z: (z[:, :3], torch.arange(B) % K), ValueError, "expected (B, 8)"),
    "integer z": (lambda z: (z.long(), torch.arange(B) % K), TypeError, "z must be a floating-point tensor"),
    "list labels": (lambda z: (z, [0, 1, 2, 3, 4, 0]), TypeError, "y must be a torch.Tensor"),
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("case", MISUSE, ids=list(MISUSE))
def test_misuse_of_loss_z_y_is_a_sentence_not_an_indexing_error(name, case):
    make, error, fragment = MISUSE[case]
    loss = build(name, num_classes=K, latent_dim=D)
    z, y = make(torch.randn(B, D))
    with pytest.raises(error) as err:
        loss(z, y)
    assert fragment in str(err.value) and str(err.value).startswith("loss(z, y): ")


@pytest.mark.parametrize("name", ALL)
def test_predict_names_latent_dim_for_a_wrong_width(name):
    with pytest.raises(ValueError, match=r"predict\(z\): z has shape \(6, 3\); expected \(B, 8\)"):
        build(name, num_classes=K, latent_dim=D).predict(torch.randn(B, 3))


def test_a_bad_build_argument_is_a_value_error_with_a_sentence():
    with pytest.raises(ValueError, match=r"loss.alpha=-1: must be > 0\."):
        build("pod", num_classes=K, latent_dim=D, alpha=-1)
    with pytest.raises(ValueError, match=r"latent_dim=0: must be >= 1\."):
        build("softmax", num_classes=K, latent_dim=0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8])
def test_labels_of_any_integer_dtype_give_the_same_loss(name, dtype):
    torch.manual_seed(0)
    loss = build(name, num_classes=K, latent_dim=D).eval()
    z, y = torch.randn(B, D), torch.arange(B) % K
    assert torch.equal(loss(z, y.to(dtype)), loss(z, y))
