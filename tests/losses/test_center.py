import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64

from podexp.losses import build

K, D, B = 3, 4, 6


def make(lam=0.003, alpha=0.5):
    torch.manual_seed(3)
    loss = build("center", num_classes=K, latent_dim=D, lam=lam, alpha=alpha)
    with torch.no_grad():
        loss.centres.copy_(torch.randn(K, D))
    return loss


def test_value_is_softmax_plus_lambda_over_2b_squared_distances():
    loss = make(lam=0.1)
    z, y = torch.randn(B, D), torch.tensor([0, 1, 2, 0, 1, 2])
    zn, c = np64(z), np64(loss.centres)
    ce = cross_entropy(zn @ np64(loss.weight).T + np64(loss.fc.bias), y.numpy())
    centre_term = sum(np.sum((zn[i] - c[y[i]]) ** 2) for i in range(B)) / (2 * B)
    assert loss(z, y).item() == pytest.approx(ce + 0.1 * centre_term, rel=1e-5)


def test_centres_have_their_own_group_with_lr_alpha_and_no_weight_decay():
    loss = make(alpha=0.25)
    groups = loss.param_groups(lr=0.1)
    centre_groups = [g for g in groups if any(p is loss.centres for p in g["params"])]
    assert len(centre_groups) == 1
    assert centre_groups[0]["lr"] == 0.25 and centre_groups[0]["weight_decay"] == 0.0
    assert len(centre_groups[0]["params"]) == 1
    assert "centres" in loss.state_dict()


def test_sgd_step_moves_centres_by_alpha_times_wen_update():
    """Wen et al. Algorithm 1: c_j <- c_j - alpha * (1/B) sum_{i: y_i = j} (c_j - z_i), independent of lambda."""
    loss = make(lam=0.003, alpha=0.5)
    z, y = torch.randn(B, D), torch.tensor([0, 0, 1, 1, 1, 0])
    before, zn = np64(loss.centres), np64(z)
    optimizer = torch.optim.SGD(loss.param_groups(lr=0.1), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss(z, y).backward()
    optimizer.step()
    expected = before.copy()
    for j in range(K):
        members = [i for i in range(B) if y[i] == j]
        expected[j] -= 0.5 * sum((before[j] - zn[i] for i in members), np.zeros(D)) / B
    np.testing.assert_allclose(np64(loss.centres), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(np64(loss.centres)[2], before[2])        # class 2 absent: unmoved


def test_gradient_wrt_z_carries_lambda():
    loss = make(lam=0.2)
    z, y = torch.randn(B, D, requires_grad=True), torch.tensor([0, 1, 2, 0, 1, 2])
    loss(z, y).backward()
    with_centres = np64(z.grad)
    z.grad = None
    loss.lam = 0.0
    loss(z, y).backward()
    expected = 0.2 * (np64(z) - np64(loss.centres)[y.numpy()]) / B      # d/dz of lam/(2B) |z - c|^2
    np.testing.assert_allclose(with_centres - np64(z.grad), expected, rtol=1e-4, atol=1e-7)


def test_predict_is_wz_plus_b():
    loss = make()
    z = torch.randn(B, D)
    expected = np64(z) @ np64(loss.weight).T + np64(loss.fc.bias)
    np.testing.assert_allclose(np64(loss.predict(z)), expected, rtol=1e-5, atol=1e-6)
