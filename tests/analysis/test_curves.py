"""Figs. 2–3 derivatives against finite differences of the losses; metrics curves."""

import json

import numpy as np
import pytest

from podexp.analysis.curves import cosine_loss_derivative, mean_curve, mse_normalised_derivative, read_metrics


def _finite_difference(loss, theta, h=1e-6):
    return (loss(theta + h) - loss(theta - h)) / (2 * h)


def test_mse_on_normalised_features_derivative():
    theta = np.linspace(0.1, 3.0, 30)

    # ‖ẑ − a‖² for unit vectors at angle θ, computed from the vectors themselves
    def loss(t):
        z = np.stack([np.cos(t), np.sin(t)], axis=-1)
        return ((z - np.array([1.0, 0.0])) ** 2).sum(-1)

    np.testing.assert_allclose(mse_normalised_derivative(theta), _finite_difference(loss, theta), rtol=1e-6)


def test_cosine_loss_derivative_and_its_peak_at_two_thirds_pi():
    theta = np.linspace(0.1, 3.0, 30)
    np.testing.assert_allclose(
        cosine_loss_derivative(theta), _finite_difference(lambda t: (1 - np.cos(t)) ** 2, theta), rtol=1e-6
    )
    grid = np.linspace(0, np.pi, 100001)
    values = cosine_loss_derivative(grid)
    assert grid[values.argmax()] == pytest.approx(2 * np.pi / 3, abs=1e-4)
    assert values.max() == pytest.approx(2 * 1.5 * np.sqrt(3) / 2, rel=1e-8)  # METHOD §3: ≈ 2.6


def test_read_metrics_and_mean_curve(tmp_path):
    for name, accs in (("a", [10, 20, 30]), ("b", [20, 40])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(
            "".join(json.dumps({"epoch": i, "test_acc": a}) + "\n" for i, a in enumerate(accs))
        )
    runs = [read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")]
    epochs, mean, std = mean_curve(runs, "test_acc")
    np.testing.assert_array_equal(epochs, [1, 2])  # truncated to the shortest run
    np.testing.assert_allclose(mean, [15, 30])
    np.testing.assert_allclose(std, [5, 10])
    assert read_metrics(tmp_path / "missing") == []
