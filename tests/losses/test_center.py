import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64

from podexp.errors import ConfigError
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


def one_sgd_step(loss, z, y):
    optimizer = torch.optim.SGD(loss.param_groups(lr=0.1), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss(z, y).backward()
    optimizer.step()


def test_default_step_is_wens_algorithm_1():
    """Wen et al. eq. 4 / Algorithm 1: c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - z_i) / (1 + n_j),
    independent of lambda; n_j = number of class-j samples in the batch."""
    loss = make(lam=0.003, alpha=0.5)
    assert loss.center_update == "wen"
    z, y = torch.randn(B, D), torch.tensor([0, 1, 1, 1, 1, 0])  # n = (2, 4, 0)
    before, zn, labels = np64(loss.centres), np64(z), y.numpy()
    one_sgd_step(loss, z, y)
    expected = before.copy()
    for j in range(K):
        members = labels == j
        expected[j] -= 0.5 * (before[j] - zn[members]).sum(axis=0) / (1 + members.sum())
    np.testing.assert_allclose(np64(loss.centres), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(np64(loss.centres)[2], before[2])  # class 2 absent: unmoved


def test_batch_mean_option_moves_centres_by_sum_over_b():
    """The 1/B port: c_j <- c_j - alpha * (1/B) sum_{i: y_i = j} (c_j - z_i)."""
    torch.manual_seed(3)
    loss = build("center", num_classes=K, latent_dim=D, lam=0.003, alpha=0.5, center_update="batch_mean")
    with torch.no_grad():
        loss.centres.copy_(torch.randn(K, D))
    z, y = torch.randn(B, D), torch.tensor([0, 1, 1, 1, 1, 0])
    before, zn, labels = np64(loss.centres), np64(z), y.numpy()
    one_sgd_step(loss, z, y)
    expected = before.copy()
    for j in range(K):
        expected[j] -= 0.5 * (before[j] - zn[labels == j]).sum(axis=0) / B
    np.testing.assert_allclose(np64(loss.centres), expected, rtol=1e-5, atol=1e-6)


def test_unknown_center_update_is_a_config_error():
    with pytest.raises(ConfigError, match="use wen or batch_mean"):
        build("center", num_classes=K, latent_dim=D, center_update="mean")


def test_gradient_wrt_z_carries_lambda():
    loss = make(lam=0.2)
    z, y = torch.randn(B, D, requires_grad=True), torch.tensor([0, 1, 2, 0, 1, 2])
    loss(z, y).backward()
    with_centres = np64(z.grad)
    z.grad = None
    loss.lam = 0.0
    loss(z, y).backward()
    expected = 0.2 * (np64(z) - np64(loss.centres)[y.numpy()]) / B  # d/dz of lam/(2B) |z - c|^2
    np.testing.assert_allclose(with_centres - np64(z.grad), expected, rtol=1e-4, atol=1e-7)


def test_predict_is_wz_plus_b():
    loss = make()
    z = torch.randn(B, D)
    expected = np64(z) @ np64(loss.weight).T + np64(loss.fc.bias)
    np.testing.assert_allclose(np64(loss.predict(z)), expected, rtol=1e-5, atol=1e-6)
