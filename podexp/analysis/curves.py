"""Curves for the figures: the analytic θ-derivatives of the two cosine losses (Figs. 2–3) and the
per-epoch metrics of a run (Fig. 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from podexp.io import read_jsonl


def mse_normalised_derivative(theta: np.ndarray) -> np.ndarray:
    """d/dθ of ‖ẑ − a‖² = 2 − 2 cos θ (MSE on normalised features, Fig. 2): 2 sin θ."""
    return 2.0 * np.sin(theta)


def cosine_loss_derivative(theta: np.ndarray) -> np.ndarray:
    """d/dθ of the Cosine Loss (1 − cos θ)² (paper eq. 9, Fig. 3): 2 (1 − cos θ) sin θ."""
    return 2.0 * (1.0 - np.cos(theta)) * np.sin(theta)


def read_metrics(run_dir: Path) -> list[dict]:
    """The per-epoch rows of a run's ``metrics.jsonl`` (empty when it has none)."""
    return read_jsonl(Path(run_dir) / "metrics.jsonl")


def mean_curve(runs: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs 1..E, mean, std) of ``key`` over runs, truncated to the shortest run."""
    length = min((len(rows) for rows in runs), default=0)
    if length == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    values = np.array([[row[key] for row in rows[:length]] for rows in runs], dtype=float)
    return np.arange(1, length + 1), values.mean(0), values.std(0)
