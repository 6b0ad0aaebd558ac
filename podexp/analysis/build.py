"""Fill an item's table (or draw its figure) from the jobs of its sweeps.

What a table cell holds is a measure of one job, by name (``Item.measure``): ``MEASURES`` maps it to
``fn(item, job, columns, options) -> {column: value}``. A figure is drawn by ``FIGURES[item.name]``,
``fn(item, jobs, out_dir) -> [paths]``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from podexp.analysis import curves, figures
from podexp.analysis.features import extract_features
from podexp.analysis.items import Item
from podexp.analysis.runs import Job, same_value
from podexp.analysis.stats import (
    GDA_COVARIANCES,
    LEDOIT_WOLF,
    GaussianDiscriminant,
    accuracy,
    eigenvalue_variance,
    norm_split_accuracy,
    sc_eigenvalue_variance,
)
from podexp.analysis.tables import Table, add_value, new_table
from podexp.defaults import CONFIG_DIR
from podexp.registry import Registry


@dataclass
class Options:
    gda_covariance: str = "per_class"
    gda_shrinkage: float | str = LEDOIT_WOLF
    device: str = "cpu"


def shrinkage_value(text: str) -> float | str:
    """``--gda-shrinkage``: ``ledoit_wolf`` or a number in [0, 1]."""
    if text == LEDOIT_WOLF:
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"use '{LEDOIT_WOLF}' or a number in [0, 1], not {text!r}")
    return value


def add_options(parser: argparse.ArgumentParser) -> None:
    """The table builder's options (Table 9's GDA), shared by ``podexp.aggregate`` and the reproduce driver."""
    parser.add_argument(
        "--gda-covariance",
        choices=GDA_COVARIANCES,
        default=Options.gda_covariance,
        help=f"Table 9: one GDA covariance per class or one pooled by all classes (default {Options.gda_covariance})",
    )
    parser.add_argument(
        "--gda-shrinkage",
        type=shrinkage_value,
        default=Options.gda_shrinkage,
        help=f"Table 9: weight of the GDA covariance's shrinkage towards a scaled identity, "
        f"'{LEDOIT_WOLF}' (estimated per covariance) or a number in [0, 1] "
        f"(default {Options.gda_shrinkage})",
    )


def options_from(args: argparse.Namespace) -> Options:
    return Options(args.gda_covariance, args.gda_shrinkage)


def selected(item: Item, jobs: list[Job]) -> list[Job]:
    """The jobs that belong to ``item``: those matching its ``where`` labels."""
    return [job for job in jobs if all(same_value(job.label(k), v) for k, v in item.where.items())]


def row_label(item: Item, job: Job) -> str:
    return "/".join(str(job.label(key)) for key in item.rows)


MEASURES = Registry("measure", context=("item", "job", "columns", "options"))
FIGURES = Registry("figure", context=("item", "jobs", "out_dir"))


@MEASURES.register("accuracy")
def final_accuracy(item: Item, job: Job, columns: list[str], options: Options) -> dict[str, float]:
    """The final test accuracy, in the column the job's label names (or the table's only column)."""
    column = job.label(item.column) if item.column else columns[0]
    return {column: float(job.result["final_test_acc"])}


@MEASURES.register("norm_split")
def norm_split(item: Item, job: Job, columns: list[str], options: Options) -> dict[str, float]:
    features = extract_features(job.path, options.device)
    return norm_split_accuracy(features.test_z, features.test_y, features.test_pred)


@MEASURES.register("eigen_variance")
def eigen_variance(item: Item, job: Job, columns: list[str], options: Options) -> dict[str, float]:
    """Table 5's two readings: the eigenvalue variance of the latent features' covariance, and that of
    SC's own matrix C = RᵀR/(N−1), R = ẑ − a_y (docs/reproduce.md)."""
    features = extract_features(job.path, options.device)
    return {
        "feature_cov": eigenvalue_variance(features.test_z),
        "sc_matrix": sc_eigenvalue_variance(features.test_z, features.test_y, features.centres),
    }


@MEASURES.register("cosine_vs_gda")
def cosine_vs_gda(item: Item, job: Job, columns: list[str], options: Options) -> dict[str, float]:
    features = extract_features(job.path, options.device)
    gda = GaussianDiscriminant(options.gda_covariance, options.gda_shrinkage)
    gda.fit(features.train_z, features.train_y, num_classes=int(job.config.dataset.num_classes))
    return {
        "cosine": accuracy(features.test_pred, features.test_y),
        "gda": accuracy(gda.predict(features.test_z), features.test_y),
    }


def measure(item: Item, job: Job, columns: list[str], options: Options) -> dict[str, float] | None:
    """{column: value} for one job, or None when the job did not finish (no result.json)."""
    if job.result is None:
        return None
    return MEASURES.get(item.measure)(item, job, columns, options)


def build_table(item: Item, jobs: list[Job], options: Options | None = None) -> Table:
    options = options or Options()
    table = new_table(item, "/".join(item.rows))
    paper_columns = list(table.columns)
    for job in selected(item, jobs):
        values = measure(item, job, paper_columns, options)
        row = row_label(item, job)
        if values is None:
            columns = [job.label(item.column)] if item.column else paper_columns
            for column in columns:
                add_value(table, row, column, None, job.path.name)
        else:
            for column, value in values.items():
                add_value(table, row, column, value)
    return table


def build_config_table(item: Item, configs: Path = CONFIG_DIR) -> Table:
    """Table 3: num_classes and latent_dim of each dataset config (no runs)."""
    table = new_table(item, "dataset")
    for row in list(table.rows):
        file = configs / "dataset" / f"{row}.yaml"
        if file.exists():
            cfg = OmegaConf.load(file)
            for column in table.columns:
                add_value(table, row, column, cfg.get(column))
    return table


def fig6_panel(job: Job) -> str:
    """The panel title of a Fig. 6 run: the loss, with α for POD (the paper shows POD at several α)."""
    loss = job.label("loss")
    return f"pod (α={float(job.label('loss.alpha')):g})" if loss == "pod" else loss


def fig6_order(panel: str) -> tuple:
    """The paper's panel order: softmax, center, am_softmax, cm, cot, pedcc_loss, then POD by α."""
    order = ["softmax", "center", "am_softmax", "cm", "cot", "pedcc_loss"]
    if panel.startswith("pod (α="):
        return (len(order) + 1, float(panel[len("pod (α=") : -1]), panel)
    return (order.index(panel) if panel in order else len(order), 0.0, panel)


# -- figures ------------------------------------------------------------------------------------


def _derivative(item: Item, derivative, out_dir: Path) -> list[Path]:
    theta = np.linspace(0.0, np.pi, 361)
    return figures.derivative_figure(item.name, theta, derivative(theta), out_dir)


@FIGURES.register("fig2")
def fig2(item: Item, jobs: list[Job], out_dir: Path) -> list[Path]:
    """dL/dθ of the MSE on normalised features (no runs)."""
    return _derivative(item, curves.mse_normalised_derivative, out_dir)


@FIGURES.register("fig3")
def fig3(item: Item, jobs: list[Job], out_dir: Path) -> list[Path]:
    """dL/dθ of the Cosine loss (no runs)."""
    return _derivative(item, curves.cosine_loss_derivative, out_dir)


@FIGURES.register("fig4")
def fig4(item: Item, jobs: list[Job], out_dir: Path) -> list[Path]:
    """Convergence: per-epoch curves of each loss, over seeds."""
    groups: dict[str, list[Job]] = {}
    for job in selected(item, jobs):
        groups.setdefault(row_label(item, job), []).append(job)
    runs = {label: [curves.read_metrics(j.path) for j in group] for label, group in groups.items()}
    return figures.convergence_figure(item.name, runs, out_dir)


@FIGURES.register("fig5")
def fig5(item: Item, jobs: list[Job], out_dir: Path) -> list[Path]:
    """POD's final training loss against α, per dataset."""
    points: dict[str, dict[float, list[float]]] = {}
    for job in selected(item, jobs):
        rows = curves.read_metrics(job.path)
        if job.result is not None and rows:
            dataset, alpha = job.label("dataset"), float(job.label("loss.alpha"))
            points.setdefault(dataset, {}).setdefault(alpha, []).append(rows[-1]["train_loss"])
    return figures.loss_vs_alpha_figure(item.name, points, out_dir)


@FIGURES.register("fig6")
def fig6(item: Item, jobs: list[Job], out_dir: Path) -> list[Path]:
    """2-D latent features of each loss (and POD at several α)."""
    panels = {}
    for job in selected(item, jobs):
        label = fig6_panel(job)
        if job.result is not None and label not in panels:
            features = extract_features(job.path)
            panels[label] = (features.test_z.numpy(), features.test_y.numpy())
    ordered = dict(sorted(panels.items(), key=lambda kv: fig6_order(kv[0])))
    return figures.latent_scatter_figure(item.name, ordered, out_dir)


def build_figure(item: Item, jobs: list[Job], out_dir: Path) -> list[Path]:
    """Draw the figure of ``item`` into ``out_dir`` (PNG, PDF and the plotted data as CSV)."""
    return FIGURES.get(item.name)(item, jobs, out_dir)
