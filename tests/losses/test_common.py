"""Properties every loss shares: finite values and gradients at cos theta = +-1 and under bf16
autocast, and ``predict`` giving (B, K) margin-free scores."""
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from podexp.losses import available, build, hyperparameters

K, D, B = 5, 8, 6
ALL = available()        # every registered loss, so a newly registered one is tested here automatically
LOSS_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "loss"


def class_directions(loss):
    """The class direction each loss compares z with: its (learnt) weight or its fixed PEDCC."""
    return (loss.pedcc if hasattr(loss, "pedcc") else loss.weight).detach()


def test_registered_losses_and_loss_configs_match():
    """Each registered loss is selectable as ``loss=<name>`` and each config names a registered loss."""
    configs = {path.stem: yaml.safe_load(path.read_text()) for path in LOSS_CONFIGS.glob("*.yaml")}
    assert set(configs) == set(ALL)
    for stem, config in configs.items():
        assert config["name"] == stem
        assert set(config) - {"name"} <= set(hyperparameters(stem))


def test_the_papers_losses_are_all_registered():
    """The ten losses of the paper's Table 4 plus L-Softmax and W-Softmax (docs/method.md §4)."""
    table4 = yaml.safe_load((LOSS_CONFIGS.parent / "experiment" / "table4.yaml").read_text())
    paper = set(table4["hydra"]["sweeper"]["params"]["loss"].split(",")) | {"lsoftmax", "wsoftmax"}
    assert len(paper) == 12 and paper <= set(ALL)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["parallel", "antiparallel"])
def test_finite_loss_and_gradients_at_cosine_plus_minus_one(name, sign):
    torch.manual_seed(0)
    loss = build(name, num_classes=K, latent_dim=D)
    if name == "pedcc_loss":
        loss.eval()          # running statistics (0, 1): BatchNorm keeps z's direction, so cos = +-1 exactly
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
