"""Cosine, NaC, POD and the SC term: values and gradients against numpy formulas (docs/method.md §3).

Gradients are checked against central finite differences of the float64 numpy formula.
"""

import numpy as np
import pytest
import torch
from numpy_reference import np64, numeric_gradient, unit_rows, value_and_grad

from podexp.losses import build
from podexp.losses.pedcc_family import self_correlation_loss

K, D = 4, 6


def batch(size=5, seed=7):
    torch.manual_seed(seed)
    return torch.randn(size, D), torch.arange(size) % K


def np_nac(z, a, y, v):
    total = 0.0
    for i in range(len(y)):
        cos = z[i] @ a[y[i]] / np.sqrt(z[i] @ z[i] + v**2)
        total += (1 - cos) ** 2
    return total / len(y)


def np_sc(z, a, y, normalise):
    r = unit_rows(z) - a[y]
    if normalise == "correlation":
        c = np.corrcoef(r, rowvar=False)  # Pearson correlation of the columns
    else:
        c = sum(np.outer(ri, ri) for ri in r) / (len(r) - 1)  # second moment, no mean subtraction
    off_diagonal = sum(c[j, k] ** 2 for j in range(D) for k in range(D) if j != k)
    return off_diagonal / (D - 1)


def check_value_and_gradient(loss, reference, z, y):
    value, grad = value_and_grad(loss, z, y)
    assert value == pytest.approx(reference(np64(z)), rel=1e-5)
    np.testing.assert_allclose(grad, numeric_gradient(reference, np64(z)), rtol=1e-3, atol=1e-6)


def test_cosine_value_and_gradient():
    loss = build("cosine", num_classes=K, latent_dim=D)
    z, y = batch()
    check_value_and_gradient(loss, lambda zz: np_nac(zz, np64(loss.pedcc), y.numpy(), 0.0), z, y)


@pytest.mark.parametrize("v", [0.05, 1.7])
def test_nac_value_and_gradient(v):
    loss = build("nac", num_classes=K, latent_dim=D, v0=v)
    z, y = batch()
    check_value_and_gradient(loss, lambda zz: np_nac(zz, np64(loss.pedcc), y.numpy(), v), z, y)


@pytest.mark.parametrize("normalise", ["second_moment", "correlation"])
@pytest.mark.parametrize("size", [4, 9], ids=["B<d", "B>d"])
def test_pod_value_and_gradient(normalise, size):
    lam, v = 0.7, 0.3
    loss = build("pod", num_classes=K, latent_dim=D, lam=lam, v0=v, sc_normalise=normalise)
    z, y = batch(size)
    a = np64(loss.pedcc)

    def reference(zz):
        return np_nac(zz, a, y.numpy(), v) + lam * np_sc(zz, a, y.numpy(), normalise)

    check_value_and_gradient(loss, reference, z, y)


@pytest.mark.parametrize("normalise", ["second_moment", "correlation"])
def test_sc_term_alone(normalise):
    loss = build("pod", num_classes=K, latent_dim=D)
    z, y = batch(8, seed=8)
    value = self_correlation_loss(z, loss.pedcc, y, normalise)
    assert float(value) == pytest.approx(np_sc(np64(z), np64(loss.pedcc), y.numpy(), normalise), rel=1e-5)


def test_pod_with_zero_lambda_is_nac_and_nac_with_zero_v_is_cosine():
    z, y = batch()
    pod = build("pod", num_classes=K, latent_dim=D, lam=0.0, v0=0.4)
    nac = build("nac", num_classes=K, latent_dim=D, v0=0.4)
    assert pod(z, y).item() == pytest.approx(nac(z, y).item(), rel=1e-6)
    nac_zero = build("nac", num_classes=K, latent_dim=D, v0=0.0)
    cosine = build("cosine", num_classes=K, latent_dim=D)
    assert nac_zero(z, y).item() == pytest.approx(cosine(z, y).item(), rel=1e-6)
    assert nac(z, y).item() != pytest.approx(cosine(z, y).item(), rel=1e-3)  # v matters


@pytest.mark.parametrize("source", ["latent", "projection"])
def test_v_schedule_across_epochs(source):
    """v = v0 in epoch 0, then alpha * (e + 1) * (mean norm over epoch e's samples) after epoch e."""
    alpha, v0 = 0.02, 0.05
    loss = build("pod", num_classes=K, latent_dim=D, alpha=alpha, v0=v0, v_norm_source=source)
    a = np64(loss.pedcc)
    generator = torch.Generator().manual_seed(9)
    v = v0
    for epoch in range(4):
        norms = []
        for size in (5, 3):
            z = 1.0 + epoch + torch.randn(size, D, generator=generator)
            y = torch.arange(size) % K
            nac_part = np_nac(np64(z), a, y.numpy(), v)
            assert loss.v == pytest.approx(v, rel=1e-6)
            assert loss(z, y).item() == pytest.approx(
                nac_part + np_sc(np64(z), a, y.numpy(), "second_moment"), rel=1e-5
            )
            features = np64(z) if source == "latent" else np64(z) @ a.T
            norms += list(np.linalg.norm(features, axis=1))
        loss.on_epoch_end(epoch, lambda t: t)
        v = alpha * (epoch + 1) * np.mean(norms)
        assert loss.v == pytest.approx(v, rel=1e-5)
        assert loss.state_dict()["v_value"].item() == pytest.approx(v, rel=1e-5)


def test_eval_mode_batches_do_not_enter_the_norm_average():
    loss = build("nac", num_classes=K, latent_dim=D, alpha=0.1, v_norm_source="latent")
    z, y = batch()
    loss(z, y)
    loss.eval()
    loss(100 * z, y)
    loss.on_epoch_end(0, lambda t: t)
    assert loss.v == pytest.approx(0.1 * np.linalg.norm(np64(z), axis=1).mean(), rel=1e-5)


@pytest.mark.parametrize("name", ["cosine", "nac", "pod"])
def test_predict_is_cosine_to_pedcc(name):
    loss = build(name, num_classes=K, latent_dim=D)
    z, _ = batch(7)
    expected = unit_rows(np64(z)) @ np64(loss.pedcc).T
    np.testing.assert_allclose(np64(loss.predict(z)), expected, atol=1e-6)
    assert (loss.predict(z).argmax(1).numpy() == expected.argmax(1)).all()


@pytest.mark.parametrize("name", ["nac", "pod"])
def test_a_non_finite_batch_never_reaches_v(name):
    """A train-mode batch with NaN/inf rows (a diverging step) is left out of the norm sums, so v stays
    the mean norm of the finite rows (issue 13, item 7)."""
    loss = build(name, num_classes=4, latent_dim=8, v_norm_source="latent")
    z = torch.randn(6, 8)
    y = torch.arange(6) % 4
    loss(z, y)
    poisoned = z.clone()
    poisoned[0, 0], poisoned[1, 3] = float("nan"), float("inf")
    loss(poisoned, y)
    loss.on_epoch_end(epoch=0, all_reduce=lambda t: t)
    finite_norms = torch.cat([z.norm(dim=1), z[2:].norm(dim=1)])
    assert loss.v == pytest.approx(loss.alpha * float(finite_norms.mean()))


@pytest.mark.parametrize("name", ["nac", "pod"])
def test_a_v_beyond_float32_becomes_inf_not_an_overflow_error(name):
    """alpha=1e38 times a norm of a few units overflows float32: v is inf (which the trainer's finite-state
    check reports by name), not a RuntimeError traceback."""
    loss = build(name, num_classes=4, latent_dim=8, alpha=1e38)
    loss(torch.full((6, 8), 3.0), torch.arange(6) % 4)
    loss.on_epoch_end(epoch=0, all_reduce=lambda t: t)
    assert loss.v == float("inf")
