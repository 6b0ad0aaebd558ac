"""AM-Softmax, ArcFace and CM against numpy loops over the samples (docs/method.md §4)."""

import math

import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64, unit_rows

from podexp.losses import build

K, D, B = 4, 5, 6


def batch(seed=0):
    torch.manual_seed(seed)
    return torch.randn(B, D), torch.tensor([0, 1, 2, 3, 0, 2])


def cosines(loss, z):
    return unit_rows(np64(z)) @ unit_rows(np64(loss.weight)).T


def margin_ce(cos, y, scale, target_fn):
    logits = []
    for row, label in zip(cos, y):
        row = row.copy()
        row[label] = target_fn(row[label])
        logits.append(scale * row)
    return cross_entropy(np.array(logits), y)


def test_am_softmax_value():
    loss = build("am_softmax", num_classes=K, latent_dim=D, scale=30.0, margin=0.35)
    z, y = batch()
    expected = margin_ce(cosines(loss, z), y.numpy(), 30.0, lambda c: c - 0.35)
    assert loss(z, y).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("easy_margin", [False, True])
def test_arcface_value_with_fallback_and_easy_margin(easy_margin):
    m, s = 0.5, 64.0
    loss = build("arcface", num_classes=K, latent_dim=D, scale=s, margin=m, easy_margin=easy_margin)
    z, y = batch(1)
    w = np64(loss.weight)
    z[0] = -torch.from_numpy(w[y[0]]).float() + 0.05 * torch.randn(D)  # theta_y close to pi: past pi - m
    cos = cosines(loss, z)
    assert math.acos(cos[0, y[0]]) > math.pi - m

    def target(c):
        theta = math.acos(c)
        if easy_margin:
            return math.cos(theta + m) if c > 0 else c
        return math.cos(theta + m) if theta <= math.pi - m else c - m * math.sin(m)

    assert loss(z, y).item() == pytest.approx(margin_ce(cos, y.numpy(), s, target), rel=1e-5)


@pytest.mark.parametrize("fallback", [False, True])
def test_combined_margin_uses_all_three_margins(fallback):
    m1, m2, m3, s = 1.2, 0.3, 0.2, 16.0
    loss = build(
        "cm", num_classes=K, latent_dim=D, scale=s, m1=m1, m2=m2, m3=m3, monotonic_fallback=fallback, easy_margin=False
    )
    z, y = batch(2)
    z[0] = -torch.from_numpy(np64(loss.weight)[y[0]]).float() + 0.05 * torch.randn(D)
    cos = cosines(loss, z)
    theta_b = (math.pi - m2) / m1
    assert math.acos(cos[0, y[0]]) > theta_b  # one sample in the fallback region

    def target(c):
        theta = math.acos(c)
        if fallback and theta > theta_b:
            return c - (math.cos(theta_b) + 1 + m3)
        return math.cos(m1 * theta + m2) - m3

    assert loss(z, y).item() == pytest.approx(margin_ce(cos, y.numpy(), s, target), rel=1e-5)


def test_combined_margin_easy_margin_keeps_plain_cosine_where_negative():
    m1, m2, m3 = 1.0, 0.3, 0.2
    loss = build("cm", num_classes=K, latent_dim=D, scale=8.0, m1=m1, m2=m2, m3=m3, easy_margin=True)
    z, y = batch(5)
    cos = cosines(loss, z)
    targets = cos[np.arange(B), y.numpy()]
    assert (targets > 0).any() and (targets < 0).any()

    def target(c):
        return math.cos(m1 * math.acos(c) + m2) - m3 if c > 0 else c

    assert loss(z, y).item() == pytest.approx(margin_ce(cos, y.numpy(), 8.0, target), rel=1e-5)


def test_combined_margin_target_is_continuous_and_decreasing_with_fallback():
    loss = build("cm", num_classes=K, latent_dim=D, m1=1.0, m2=0.3, m3=0.2, easy_margin=False)
    theta = torch.linspace(0.0, math.pi, 4001, dtype=torch.float64)
    target = loss.target_logit(torch.cos(theta)).numpy()
    steps = np.diff(target)
    assert (steps < 1e-9).all() and np.abs(steps).max() < 2e-3


@pytest.mark.parametrize(
    "name,zero_margin",
    [("am_softmax", {"margin": 0.0}), ("arcface", {"margin": 0.0}), ("cm", {"m1": 1.0, "m2": 0.0, "m3": 0.0})],
)
def test_zero_margin_is_cross_entropy_on_scaled_cosine(name, zero_margin):
    loss = build(name, num_classes=K, latent_dim=D, scale=10.0, **zero_margin)
    z, y = batch(3)
    assert loss(z, y).item() == pytest.approx(cross_entropy(10.0 * cosines(loss, z), y.numpy()), rel=1e-5)


@pytest.mark.parametrize("name", ["am_softmax", "arcface", "cm"])
def test_predict_is_the_margin_free_cosine(name):
    loss = build(name, num_classes=K, latent_dim=D)
    z, _ = batch(4)
    expected = cosines(loss, z)
    np.testing.assert_allclose(np64(loss.predict(z)), expected, atol=1e-6)
    assert (loss.predict(z).argmax(1).numpy() == expected.argmax(1)).all()
