"""PEDCC-Loss: AM-Softmax on cos(BN(z)/|BN(z)|, a_k) + (sum |z_hat - a_y|^2)^N."""

import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64, unit_rows

from podexp.losses import build

K, D, B = 4, 6, 8


def batch():
    torch.manual_seed(6)
    return 2.0 * torch.randn(B, D) + 1.0, torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])


def batch_normalised_unit(z):
    """BatchNorm1d(affine=False) in training mode (biased variance, eps 1e-5), then unit rows."""
    zn = np64(z)
    standardised = (zn - zn.mean(0)) / np.sqrt(zn.var(0) + 1e-5)
    return unit_rows(standardised)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_value(power):
    loss = build("pedcc_loss", num_classes=K, latent_dim=D, scale=7.5, margin=0.35, mse_power=power)
    z, y = batch()
    z_hat, a = batch_normalised_unit(z), np64(loss.pedcc)
    cos = z_hat @ a.T
    margin_cos = cos.copy()
    for i in range(B):
        margin_cos[i, y[i]] -= 0.35
    squared = sum(np.sum((z_hat[i] - a[y[i]]) ** 2) for i in range(B))
    expected = cross_entropy(7.5 * margin_cos, y.numpy()) + squared**power
    assert loss(z, y).item() == pytest.approx(expected, rel=1e-5)


def test_pedcc_is_a_fixed_buffer():
    loss = build("pedcc_loss", num_classes=K, latent_dim=D)
    assert "pedcc" in dict(loss.named_buffers()) and not list(loss.parameters())
    gram = np64(loss.pedcc) @ np64(loss.pedcc).T
    np.testing.assert_allclose(gram, np.where(np.eye(K) == 1, 1.0, -1.0 / (K - 1)), atol=1e-5)


def test_predict_is_cosine_to_pedcc_and_leaves_running_statistics_alone():
    loss = build("pedcc_loss", num_classes=K, latent_dim=D)
    z, _ = batch()
    running_before = loss.bn.running_mean.clone()
    scores = loss.predict(z)  # training mode: batch statistics
    expected = batch_normalised_unit(z) @ np64(loss.pedcc).T
    np.testing.assert_allclose(np64(scores), expected, atol=1e-5)
    assert torch.equal(loss.bn.running_mean, running_before)
    loss.eval()  # eval mode: running statistics (0, 1)
    np.testing.assert_allclose(np64(loss.predict(z)), unit_rows(np64(z)) @ np64(loss.pedcc).T, atol=1e-5)
    assert (loss.predict(z).argmax(1).numpy() == (unit_rows(np64(z)) @ np64(loss.pedcc).T).argmax(1)).all()
