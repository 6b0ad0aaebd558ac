"""Build a paper table or figure from its sweeps into ``reports/<item>/`` and, for runs logged to W&B,
log it there too.

A table comes as markdown, LaTeX and CSV (rows and columns as in ``podexp/paper_results.yaml``, mean ±
std over seeds, the paper's value and the difference, best value in bold; cells without runs read
"missing"), a figure as PNG, PDF and CSV.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from podexp.analysis import build, tables
from podexp.analysis.items import get_item
from podexp.analysis.runs import Job, find_jobs
from podexp.errors import DataError
from podexp.io import atomic_write_text

log = logging.getLogger(__name__)


def build_item(
    name: str, sweeps: list[Path], reports: Path, check: float | None = None, options: build.Options | None = None
) -> int:
    """Build ``name``'s table or figure from ``sweeps`` into ``reports/<name>/`` and print the table; the
    exit status: 1 when ``check`` is given and a cell is missing or off the paper by more than it."""
    item = get_item(name)
    missing = [s for s in sweeps if not s.is_dir()]
    if missing:
        raise DataError(
            f"{', '.join(map(str, missing))} is not a folder. Pass the sweep folder(s) of "
            f"{name} (outputs/multirun/{name}/<date_time>)."
        )
    jobs = find_jobs(sweeps)
    out_dir = reports / name
    table, images = None, []
    if item.kind == "figure":
        images = [p for p in build.build_figure(item, jobs, out_dir) if p.suffix == ".png"]
        print(f"{name}: {len(jobs)} job(s); figure written to {out_dir}")
    else:
        table = (
            build.build_config_table(item) if item.kind == "config_table" else build.build_table(item, jobs, options)
        )
        write_table(table, out_dir)
        print(tables.markdown(table), end="")
        print(f"\n(written to {out_dir}/{name}.md, .tex and .csv)")
    settings = wandb_settings(jobs)
    if settings is not None:
        log_to_wandb(name, settings, table, images, out_dir)
    if check is None or table is None or not item.checkable:
        return 0
    problems = tables.check(table, check)
    for line in problems:
        print(f"check: {line}", file=sys.stderr)
    return 1 if problems else 0


def write_table(table: tables.Table, out_dir: Path) -> list[Path]:
    """<item>.md, <item>.tex and <item>.csv in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = table.item.name
    outputs = {
        out_dir / f"{name}.md": tables.markdown(table),
        out_dir / f"{name}.tex": tables.latex(table),
        out_dir / f"{name}.csv": tables.csv_text(table),
    }
    for path, text in outputs.items():
        atomic_write_text(text, path)
    return list(outputs)


def wandb_settings(jobs: list[Job]):
    """The ``logger`` config of the first job that trained with ``logger=wandb``, else None."""
    for job in jobs:
        logger = job.config.get("logger")
        if logger is not None and logger.get("name") == "wandb":
            return logger
    return None


def log_to_wandb(item: str, settings, table: tables.Table | None, images: list[Path], out_dir: Path) -> None:
    """One W&B run per report (group = the item, job_type "report"): the table (``<item>/table``: one row
    per cell with numeric mean, std, n, failed, paper and diff that W&B can sort and plot;
    ``<item>/table_text``: as printed) and the figures."""
    try:
        import wandb

        run = wandb.init(
            project=settings.project,
            entity=settings.get("entity"),
            group=item,
            tags=[item],
            job_type="report",
            name=f"{item}-report",
            dir=str(out_dir),
            mode=settings.get("mode") or None,
            reinit="finish_previous",
        )
        if table is not None:
            columns, rows = tables.numeric_rows(table)
            text = wandb.Table(columns=tables.header(table), data=tables.body(table, bold=lambda text: text))
            run.log({f"{item}/table": wandb.Table(columns=columns, data=rows), f"{item}/table_text": text})
        for image in images:
            run.log({f"{item}/{image.stem}": wandb.Image(str(image))})
        run.finish()
    except Exception as err:  # the files on disk are the report; W&B is a copy
        log.warning("could not log %s to W&B (%s: %s); the report is in %s", item, err.__class__.__name__, err, out_dir)
