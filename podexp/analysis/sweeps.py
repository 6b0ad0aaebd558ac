"""A sweep's summary: mean ± std (n) of the final test accuracy (or another accuracy of ``result.json``:
``aggregate --metric best_val_acc``, ``test_acc_at_best_val``) per configuration, written beside it as
``summary.md`` and ``summary.csv``.

A job's configuration is its command-line overrides without the seed and the result-neutral keys
(``podexp.keys``: ``logger=wandb`` or ``resume_allow_changes=true`` do not make a row of their own).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from podexp.analysis.runs import Cell, Job, find_jobs
from podexp.errors import DataError
from podexp.io import atomic_write_text
from podexp.keys import configuration_name
from podexp.settings import RESULT_METRICS

DEFAULT_METRIC = RESULT_METRICS[0]  # final_test_acc: what the paper's tables report


def configuration(job: Job) -> str:
    """The row a job belongs to: its overrides minus the seed and the result-neutral keys."""
    return configuration_name(job.override_lines)


def metric_value(job: Job, metric: str) -> float | None:
    """``metric`` of a finished job (None while it has not finished); a finished job without it is an error."""
    if job.result is None:
        return None
    if metric not in job.result:
        why = " (trained without a validation split: dataset.val_fraction=0)" if "val" in metric else ""
        raise DataError(
            f"{job.path}/result.json has no {metric}{why}. Tabulate a metric every job of the sweep "
            f"recorded: --metric {' | '.join(m for m in RESULT_METRICS if m in job.result)}."
        )
    return job.result[metric]


def collect(sweep: Path, metric: str = DEFAULT_METRIC) -> dict[str, Cell]:
    """{configuration: its cell of ``metric``} over the jobs of ``sweep``, in the jobs' path order."""
    cells: dict[str, Cell] = {}
    for job in find_jobs([sweep]):
        cells.setdefault(configuration(job), Cell()).add(metric_value(job, metric), job.path.name)
    return cells


def _mean_std(cell: Cell) -> str:
    return "missing" if cell.mean is None else f"{cell.mean:.2f} ± {cell.std:.2f}"


def markdown(cells: dict[str, Cell], metric: str = DEFAULT_METRIC) -> str:
    title = metric.replace("_acc", " acc").replace("_", " ")  # final_test_acc -> final test acc
    lines = [f"| configuration | {title} (%) | n | failed |", "|---|---|---|---|"]
    lines += [f"| {name} | {_mean_std(c)} | {c.n} | {len(c.failed)} |" for name, c in cells.items()]
    return "\n".join(lines) + "\n"


def csv_text(cells: dict[str, Cell]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["configuration", "mean", "std", "n", "failed"])
    for name, c in cells.items():
        writer.writerow(
            [
                name,
                "" if c.mean is None else f"{c.mean:.4f}",
                "" if c.std is None else f"{c.std:.4f}",
                c.n,
                len(c.failed),
            ]
        )
    return buffer.getvalue()


def write_summary(sweep: Path, metric: str = DEFAULT_METRIC) -> str:
    """Write ``summary.md`` and ``summary.csv`` of ``metric`` into ``sweep``; returns the markdown table."""
    if not sweep.is_dir():
        raise DataError(
            f"{sweep} is not a folder. Pass the sweep folder that Hydra printed, "
            f"e.g. outputs/multirun/demo/<date_time>."
        )
    cells = collect(sweep, metric)
    if not cells:
        raise DataError(
            f"no runs (folders with config.yaml or failed.json) under {sweep}. Pass the "
            f"folder of a sweep (train.py -m ...), e.g. outputs/multirun/demo/<date_time>."
        )
    table = markdown(cells, metric)
    atomic_write_text(table, sweep / "summary.md")
    atomic_write_text(csv_text(cells), sweep / "summary.csv")
    return table
