"""Fill an item's table (or draw its figure) from the jobs of its sweeps."""
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
from podexp.analysis.stats import (GDA_COVARIANCES, LEDOIT_WOLF, GaussianDiscriminant, accuracy,
                                   eigenvalue_variance, norm_split_accuracy, sc_eigenvalue_variance)
from podexp.analysis.tables import Table, add_value, new_table

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


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
    parser.add_argument("--gda-covariance", choices=GDA_COVARIANCES, default=Options.gda_covariance,
                        help=f"Table 9: one GDA covariance per class or one pooled by all classes "
                             f"(default {Options.gda_covariance})")
    parser.add_argument("--gda-shrinkage", type=shrinkage_value, default=Options.gda_shrinkage,
                        help=f"Table 9: weight of the GDA covariance's shrinkage towards a scaled identity, "
                             f"'{LEDOIT_WOLF}' (estimated per covariance) or a number in [0, 1] "
                             f"(default {Options.gda_shrinkage})")


def options_from(args: argparse.Namespace) -> Options:
    return Options(args.gda_covariance, args.gda_shrinkage)


def selected(item: Item, jobs: list[Job]) -> list[Job]:
    """The jobs that belong to ``item``: those matching its ``where`` labels."""
    return [job for job in jobs if all(same_value(job.label(k), v) for k, v in item.where.items())]


def row_label(item: Item, job: Job) -> str:
    return "/".join(str(job.label(key)) for key in item.rows)


def measure(item: Item, job: Job, columns: list[str], options: Options) -> dict[str, float] | None:
    """{column: value} for one job, or None when the job did not finish (no result.json)."""
    if job.result is None:
        return None
    if item.measure == "accuracy":
        column = job.label(item.column) if item.column else columns[0]
        return {column: float(job.result["final_test_acc"])}
    features = extract_features(job.path, options.device)
    if item.measure == "norm_split":
        return norm_split_accuracy(features.test_z, features.test_y, features.test_pred)
    if item.measure == "eigen_variance":
        return {"feature_cov": eigenvalue_variance(features.test_z),
                "sc_matrix": sc_eigenvalue_variance(features.test_z, features.test_y, features.centres)}
    if item.measure == "cosine_vs_gda":
        gda = GaussianDiscriminant(options.gda_covariance, options.gda_shrinkage)
        gda.fit(features.train_z, features.train_y, num_classes=int(job.config.dataset.num_classes))
        return {"cosine": accuracy(features.test_pred, features.test_y),
                "gda": accuracy(gda.predict(features.test_z), features.test_y)}
    raise ValueError(f"unknown measure {item.measure!r}")


def build_table(item: Item, jobs: list[Job], options: Options = Options()) -> Table:
    table = new_table(item, "/".join(item.rows))
    paper_columns = list(table.columns)
    for job in selected(item, jobs):
        values = measure(item, job, paper_columns, options)
        row = row_label(item, job)
        if values is None:
            columns = [job.label(item.column)] if item.column else paper_columns
            for column in columns:
                add_value(table, row, column, None)
        else:
            for column, value in values.items():
                add_value(table, row, column, value)
    return table


def build_config_table(item: Item, configs: Path = CONFIGS) -> Table:
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
        return (len(order) + 1, float(panel[len("pod (α="):-1]), panel)
    return (order.index(panel) if panel in order else len(order), 0.0, panel)


# -- figures ------------------------------------------------------------------------------------

def build_figure(item: Item, jobs: list[Job], out_dir: Path) -> list[Path]:
    """Draw the figure of ``item`` into ``out_dir`` (PNG, PDF and the plotted data as CSV)."""
    if item.name in ("fig2", "fig3"):
        theta = np.linspace(0.0, np.pi, 361)
        derivative = (curves.mse_normalised_derivative if item.name == "fig2"
                      else curves.cosine_loss_derivative)(theta)
        return figures.derivative_figure(item.name, theta, derivative, out_dir)
    groups: dict[str, list[Job]] = {}
    for job in selected(item, jobs):
        groups.setdefault(row_label(item, job), []).append(job)
    if item.name == "fig4":
        runs = {label: [curves.read_metrics(j.path) for j in group] for label, group in groups.items()}
        return figures.convergence_figure(item.name, runs, out_dir)
    if item.name == "fig5":
        points: dict[str, dict[float, list[float]]] = {}
        for job in selected(item, jobs):
            rows = curves.read_metrics(job.path)
            if job.result is not None and rows:
                dataset, alpha = job.label("dataset"), float(job.label("loss.alpha"))
                points.setdefault(dataset, {}).setdefault(alpha, []).append(rows[-1]["train_loss"])
        return figures.loss_vs_alpha_figure(item.name, points, out_dir)
    if item.name == "fig6":
        panels = {}
        for job in selected(item, jobs):
            label = fig6_panel(job)
            if job.result is not None and label not in panels:
                features = extract_features(job.path)
                panels[label] = (features.test_z.numpy(), features.test_y.numpy())
        ordered = dict(sorted(panels.items(), key=lambda kv: fig6_order(kv[0])))
        return figures.latent_scatter_figure(item.name, ordered, out_dir)
    raise ValueError(f"{item.name} is not a figure")
