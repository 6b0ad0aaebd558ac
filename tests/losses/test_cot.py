"""COT: objective 0 = cross-entropy, objective 1 = -(complement entropy) / (K-1) or / K."""

import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64

from podexp.losses import build
from podexp.losses.cot import complement_log_distribution

K, D, B = 5, 4, 6


def batch():
    torch.manual_seed(5)
    return torch.randn(B, D), torch.tensor([0, 1, 2, 3, 4, 0])


def logits_of(loss, z):
    return np64(z) @ np64(loss.weight).T + np64(loss.fc.bias)


def complement_softmax(row, label):
    """softmax over the non-target logits, with probability 0 at the target."""
    others = [j for j in range(len(row)) if j != label]
    exps = {j: np.exp(row[j] - max(row[others])) for j in others}
    total = sum(exps.values())
    return np.array([0.0 if j == label else exps[j] / total for j in range(len(row))])


def test_two_objectives_and_cross_entropy_first():
    loss = build("cot", num_classes=K, latent_dim=D)
    z, y = batch()
    assert loss.num_objectives == 2
    assert loss(z, y, objective=0).item() == pytest.approx(cross_entropy(logits_of(loss, z), y.numpy()), rel=1e-5)


@pytest.mark.parametrize("normalise,norm", [("k_minus_1", K - 1), ("k", K)])
def test_second_objective_is_minus_normalised_complement_entropy(normalise, norm):
    loss = build("cot", num_classes=K, latent_dim=D, normalise=normalise)
    z, y = batch()
    logits = logits_of(loss, z)
    total = 0.0
    for row, label in zip(logits, y.numpy()):
        q = complement_softmax(row, label)
        total += sum(q[j] * np.log(q[j]) for j in range(K) if j != label)
    assert loss(z, y, objective=1).item() == pytest.approx(total / B / norm, rel=1e-5)


def test_complement_distribution_is_softmax_over_non_target_logits():
    logits, y = torch.randn(B, K, dtype=torch.float64), torch.tensor([4, 3, 2, 1, 0, 4])
    q, log_q = complement_log_distribution(logits, y)
    for i in range(B):
        expected = complement_softmax(logits[i].numpy(), int(y[i]))
        np.testing.assert_allclose(q[i].numpy(), expected, rtol=1e-12)
        assert log_q[i, y[i]] == 0.0 and q[i, y[i]] == 0.0


def test_complement_gradient_is_finite_even_when_the_target_logit_dominates():
    loss = build("cot", num_classes=K, latent_dim=D)
    z = (1e3 * loss.weight.detach()[[0, 1]]).requires_grad_(True)
    loss(z, torch.tensor([0, 1]), objective=1).backward()
    assert torch.isfinite(z.grad).all()


def test_uniform_non_target_probabilities_minimise_the_complement_objective():
    loss = build("cot", num_classes=K, latent_dim=D)
    with torch.no_grad():
        loss.fc.weight.zero_()
        loss.fc.bias.copy_(torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0]))
    # non-target logits all equal: q uniform over K-1 classes, sum q log q = -log(K-1)
    value = loss(torch.zeros(1, D), torch.tensor([0]), objective=1).item()
    assert value == pytest.approx(-np.log(K - 1) / (K - 1), rel=1e-6)


def test_predict_is_wz_plus_b():
    loss = build("cot", num_classes=K, latent_dim=D)
    z, _ = batch()
    np.testing.assert_allclose(np64(loss.predict(z)), logits_of(loss, z), rtol=1e-5, atol=1e-6)
