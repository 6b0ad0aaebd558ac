"""A sweep's summary: mean ± std (n) of the final test accuracy per configuration, written beside it
as ``summary.md`` and ``summary.csv``.

A job's configuration is its command-line overrides without the seed and the result-neutral keys
(``podexp.keys``: ``logger=wandb`` or ``resume_allow_changes=true`` do not make a row of their own).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from podexp.analysis.runs import Cell, Job, find_jobs, override_key
from podexp.errors import DataError
from podexp.io import atomic_write_text
from podexp.keys import is_result_neutral

FOLDED_KEYS = ("seed",)  # besides the result-neutral keys: the jobs of a row are its seeds


def configuration(job: Job) -> str:
    """The row a job belongs to: its overrides minus the seed and the result-neutral keys."""
    kept = [
        line
        for line in job.override_lines
        if override_key(line) not in FOLDED_KEYS and not is_result_neutral(override_key(line))
    ]
    return ",".join(sorted(kept)) or "(defaults)"


def collect(sweep: Path) -> dict[str, Cell]:
    """{configuration: its cell} over the jobs of ``sweep``, in the jobs' path order."""
    cells: dict[str, Cell] = {}
    for job in find_jobs([sweep]):
        value = None if job.result is None else job.result["final_test_acc"]
        cells.setdefault(configuration(job), Cell()).add(value, job.path.name)
    return cells


def _mean_std(cell: Cell) -> str:
    return "missing" if cell.mean is None else f"{cell.mean:.2f} ± {cell.std:.2f}"


def markdown(cells: dict[str, Cell]) -> str:
    lines = ["| configuration | final test acc (%) | n | failed |", "|---|---|---|---|"]
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


def write_summary(sweep: Path) -> str:
    """Write ``summary.md`` and ``summary.csv`` into ``sweep``; returns the markdown table."""
    if not sweep.is_dir():
        raise DataError(
            f"{sweep} is not a folder. Pass the sweep folder that Hydra printed, "
            f"e.g. outputs/multirun/demo/<date_time>."
        )
    cells = collect(sweep)
    if not cells:
        raise DataError(
            f"no runs (folders with config.yaml or failed.json) under {sweep}. Pass the "
            f"folder of a sweep (train.py -m ...), e.g. outputs/multirun/demo/<date_time>."
        )
    table = markdown(cells)
    atomic_write_text(table, sweep / "summary.md")
    atomic_write_text(csv_text(cells), sweep / "summary.csv")
    return table
