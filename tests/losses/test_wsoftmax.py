"""W-Softmax (Li & Wang): non-target logits use normalise(w_hat_j + alpha w_hat_y)."""

import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64, unit_rows

from podexp.losses import build

K, D, B = 4, 5, 6


def batch(seed=13):
    torch.manual_seed(seed)
    return torch.randn(B, D), torch.tensor([0, 1, 2, 3, 3, 0])


def test_value():
    alpha = 1.5
    loss = build("wsoftmax", num_classes=K, latent_dim=D, alpha=alpha)
    z, y = batch()
    w_hat, zn = unit_rows(np64(loss.weight)), np64(z)
    logits = np.zeros((B, K))
    for i in range(B):
        for j in range(K):
            if j == y[i]:
                logits[i, j] = w_hat[j] @ zn[i]
            else:
                biased = w_hat[j] + alpha * w_hat[y[i]]
                logits[i, j] = biased @ zn[i] / np.linalg.norm(biased)
    assert loss(z, y).item() == pytest.approx(cross_entropy(logits, y.numpy()), rel=1e-5)


def test_alpha_zero_is_cross_entropy_on_normalised_weights():
    loss = build("wsoftmax", num_classes=K, latent_dim=D, alpha=0.0)
    z, y = batch(14)
    expected = cross_entropy(np64(z) @ unit_rows(np64(loss.weight)).T, y.numpy())
    assert loss(z, y).item() == pytest.approx(expected, rel=1e-5)


def test_predict_is_normalised_weight_times_z():
    loss = build("wsoftmax", num_classes=K, latent_dim=D)
    z, _ = batch(16)
    expected = np64(z) @ unit_rows(np64(loss.weight)).T
    np.testing.assert_allclose(np64(loss.predict(z)), expected, rtol=1e-5, atol=1e-6)
    assert (loss.predict(z).argmax(1).numpy() == expected.argmax(1)).all()
