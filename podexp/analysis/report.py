"""Write an item's outputs under ``reports/<item>/`` and, for runs logged to W&B, log them there too."""
from __future__ import annotations

import logging
from pathlib import Path

from podexp.analysis import tables
from podexp.analysis.runs import Job
from podexp.io import atomic_write_text

log = logging.getLogger(__name__)


def write_table(table: tables.Table, out_dir: Path) -> list[Path]:
    """<item>.md, <item>.tex and <item>.csv in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = table.item.name
    outputs = {out_dir / f"{name}.md": tables.markdown(table), out_dir / f"{name}.tex": tables.latex(table),
               out_dir / f"{name}.csv": tables.csv_text(table)}
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
    """One W&B run per report (group = the item, job_type "report"): the table and the figures."""
    try:
        import wandb

        run = wandb.init(project=settings.project, entity=settings.get("entity"), group=item,
                         tags=[item], job_type="report", name=f"{item}-report", dir=str(out_dir),
                         mode=settings.get("mode") or None, reinit="finish_previous")
        if table is not None:
            run.log({f"{item}/table": wandb.Table(columns=tables.header(table), data=tables.body(
                table, bold=lambda text: text))})
        for image in images:
            run.log({f"{item}/{image.stem}": wandb.Image(str(image))})
        run.finish()
    except Exception as err:  # the files on disk are the report; W&B is a copy
        log.warning("could not log %s to W&B (%s: %s); the report is in %s", item,
                    err.__class__.__name__, err, out_dir)
