"""Where per-epoch metrics go: always ``metrics.jsonl`` + ``metrics.csv``; W&B on top when asked."""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from podexp.train.checkpoint import append_line, atomic_write_text, read_jsonl

log = logging.getLogger(__name__)


class LocalMetrics:
    """Appends one row per epoch to ``metrics.jsonl`` and rewrites ``metrics.csv`` from it."""

    def __init__(self, out_dir: Path):
        self.jsonl = Path(out_dir) / "metrics.jsonl"
        self.csv = Path(out_dir) / "metrics.csv"

    def rows(self) -> list[dict]:
        return read_jsonl(self.jsonl)

    def truncate_after(self, epoch: int) -> None:
        """Drop rows of epochs >= ``epoch`` (a resumed run rewrites them)."""
        kept = [r for r in self.rows() if r["epoch"] < epoch]
        atomic_write_text("".join(json.dumps(r) + "\n" for r in kept), self.jsonl)
        self._write_csv(kept)

    def log(self, row: dict) -> None:
        append_line(json.dumps(row), self.jsonl)
        self._write_csv(self.rows())

    def _write_csv(self, rows: list[dict]) -> None:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(text.getvalue(), self.csv)


class WandbLogger:
    """A W&B run for one training job. Failures to start never stop training."""

    def __init__(self, cfg, resolved: dict, out_dir: Path, job_name: str, run_id: str | None = None):
        self.run = None
        try:
            import wandb

            self.run = wandb.init(project=cfg.project, entity=cfg.get("entity"), group=cfg.group,
                                  tags=list(cfg.get("tags") or []), name=job_name, config=resolved,
                                  dir=str(out_dir), mode=cfg.get("mode") or None, id=run_id,
                                  resume="allow" if run_id else None, reinit="finish_previous")
        except Exception as err:  # wandb down, bad key, bad mode: keep training on local logs
            log.warning("W&B could not start (%s: %s). Training goes on with local logs in %s; "
                        "to upload later, run `wandb sync %s/wandb/offline-run-*` once W&B works "
                        "(or train with WANDB_MODE=offline).", err.__class__.__name__, err, out_dir, out_dir)

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def log(self, row: dict) -> None:
        if self.run is not None:
            self.run.log(row, step=row["epoch"])

    def summary(self, result: dict) -> None:
        if self.run is not None:
            self.run.summary.update({k: v for k, v in result.items() if isinstance(v, (int, float, str))})

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
