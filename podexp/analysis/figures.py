"""Matplotlib (Agg) drawings of the paper's figures; each writes <name>.png, <name>.pdf and the plotted
numbers as <name>.csv, and returns their paths."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from podexp.analysis.curves import mean_curve  # noqa: E402


def _save(fig, name: str, out_dir: Path, rows: list[list], columns: list[str]) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf", out_dir / f"{name}.csv"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    with paths[2].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return paths


def derivative_figure(name: str, theta: np.ndarray, derivative: np.ndarray, out_dir: Path) -> list[Path]:
    """Figs. 2–3: dL/dθ against θ in [0, π]."""
    title = {"fig2": r"MSE on normalised features $2-2\cos\theta$", "fig3": r"Cosine Loss $(1-\cos\theta)^2$"}.get(
        name, name
    )
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(theta, derivative)
    peak = int(np.argmax(derivative))
    ax.plot(theta[peak], derivative[peak], "o")
    ax.annotate(
        f"max {derivative[peak]:.3f} at θ={theta[peak]:.3f}",
        (theta[peak], derivative[peak]),
        textcoords="offset points",
        xytext=(-60, -15),
    )
    ax.set(xlabel="θ (rad)", ylabel="dL/dθ", title=title)
    return _save(fig, name, out_dir, [[t, d] for t, d in zip(theta, derivative)], ["theta", "derivative"])


def convergence_figure(name: str, runs: dict[str, list[list[dict]]], out_dir: Path) -> list[Path]:
    """Fig. 4: test accuracy and training loss per epoch, mean over seeds, one line per loss."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    rows = []
    for label, group in sorted(runs.items()):
        for ax, key in zip(axes, ("test_acc", "train_loss")):
            epochs, mean, std = mean_curve([r for r in group if r], key)
            if len(epochs):
                ax.plot(epochs, mean, label=label)
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
                rows += [[label, key, e, m, s] for e, m, s in zip(epochs, mean, std)]
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)")
    axes[1].set(xlabel="epoch", ylabel="training loss")
    axes[0].legend(fontsize=7)
    return _save(fig, name, out_dir, rows, ["loss", "metric", "epoch", "mean", "std"])


def loss_vs_alpha_figure(name: str, points: dict[str, dict[float, list[float]]], out_dir: Path) -> list[Path]:
    """Fig. 5: final training loss of POD against α (log axis), mean ± std over seeds, per dataset."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    rows = []
    for dataset, by_alpha in sorted(points.items()):
        alphas = sorted(by_alpha)
        means = [float(np.mean(by_alpha[a])) for a in alphas]
        stds = [float(np.std(by_alpha[a])) for a in alphas]
        ax.errorbar(alphas, means, yerr=stds, marker="o", capsize=3, label=dataset)
        rows += [[dataset, a, m, s, len(by_alpha[a])] for a, m, s in zip(alphas, means, stds)]
    ax.set_xscale("log")
    ax.set(xlabel="α (coefficient of v)", ylabel="final training loss")
    if points:
        ax.legend(fontsize=7)
    return _save(fig, name, out_dir, rows, ["dataset", "alpha", "mean_loss", "std_loss", "n"])


def latent_scatter_figure(name: str, panels: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path) -> list[Path]:
    """Fig. 6: 2-D latent features of the test split, coloured by class, one panel per loss / α."""
    count = max(len(panels), 1)
    cols = min(count, 4)
    fig, axes = plt.subplots(-(-count // cols), cols, figsize=(3.2 * cols, 3.2 * -(-count // cols)), squeeze=False)
    rows = []
    for ax, (label, (z, y)) in zip(axes.flat, panels.items()):
        if z.shape[1] != 2:
            raise ValueError(f"Fig. 6 needs 2-D latent features; panel {label!r} has d = {z.shape[1]}")
        ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", vmin=0, vmax=9, s=3)
        ax.set_title(label, fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        rows += [[label, a, b, int(c)] for (a, b), c in zip(z, y)]
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return _save(fig, name, out_dir, rows, ["panel", "z1", "z2", "label"])
