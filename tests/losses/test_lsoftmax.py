"""L-Softmax (Liu et al. 2016, eq. 5-7) with lambda annealing."""

import math

import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64

from podexp.losses import build
from podexp.losses.lsoftmax import psi

K, D, B = 4, 5, 6


def np_psi(theta, m):
    """(-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m], straight from the definition."""
    k = min(int(math.floor(m * theta / math.pi)), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def batch(seed=10):
    torch.manual_seed(seed)
    return torch.randn(B, D), torch.tensor([0, 1, 2, 3, 1, 2])


@pytest.mark.parametrize("m", [2, 3, 4])
def test_value_with_annealing_lambda(m):
    base, gamma, power, step = 2.0, 0.1, 2.0, 10
    loss = build("lsoftmax", num_classes=K, latent_dim=D, margin=m, base=base, gamma=gamma, power=power)
    loss.on_step(step)
    lam = base * (1 + gamma * step) ** -power  # 0.5
    z, y = batch()
    w, zn = np64(loss.weight), np64(z)
    logits = zn @ w.T
    for i in range(B):
        wy = w[y[i]]
        norms = np.linalg.norm(wy) * np.linalg.norm(zn[i])
        theta = math.acos(wy @ zn[i] / norms)
        logits[i, y[i]] = (lam * wy @ zn[i] + norms * np_psi(theta, m)) / (1 + lam)
    assert loss(z, y).item() == pytest.approx(cross_entropy(logits, y.numpy()), rel=1e-5)


def test_lambda_follows_the_global_step_floor_and_is_saved():
    loss = build("lsoftmax", num_classes=K, latent_dim=D, base=1000.0, gamma=2e-5, power=45.0, lambda_min=5.0)
    assert loss.state_metrics()["lambda"] == pytest.approx(1000.0)
    loss.on_step(3000)
    assert loss.state_metrics()["lambda"] == pytest.approx(1000.0 * (1 + 2e-5 * 3000) ** -45, rel=1e-5)
    loss.on_step(10**6)
    assert loss.state_metrics()["lambda"] == pytest.approx(5.0)
    restored = build("lsoftmax", num_classes=K, latent_dim=D, base=1000.0, gamma=2e-5, power=45.0, lambda_min=5.0)
    restored.on_step(0)
    restored.load_state_dict(loss.state_dict())
    assert int(restored.step) == 10**6


def test_margin_one_is_cross_entropy_on_wz():
    loss = build("lsoftmax", num_classes=K, latent_dim=D, margin=1, base=0.0)
    z, y = batch(11)
    assert loss(z, y).item() == pytest.approx(cross_entropy(np64(z) @ np64(loss.weight).T, y.numpy()), rel=1e-5)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_psi_matches_definition_is_continuous_and_decreasing(m):
    theta = np.linspace(0.0, math.pi, 2001)
    values = psi(torch.from_numpy(np.cos(theta)), m).numpy()
    np.testing.assert_allclose(values, [np_psi(t, m) for t in theta], atol=1e-9)
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(1 - 2 * m)
    steps = np.diff(values)
    assert (steps <= 1e-12).all()  # decreasing
    assert np.abs(steps).max() <= m * (theta[1] - theta[0]) + 1e-9  # continuous: |psi'| <= m, no jumps


def test_predict_is_wz():
    loss = build("lsoftmax", num_classes=K, latent_dim=D)
    z, _ = batch(12)
    expected = np64(z) @ np64(loss.weight).T
    np.testing.assert_allclose(np64(loss.predict(z)), expected, rtol=1e-5, atol=1e-6)
    assert (loss.predict(z).argmax(1).numpy() == expected.argmax(1)).all()
