"""Where per-epoch metrics go: always ``metrics.jsonl`` + ``metrics.csv``; W&B on top when asked."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from podexp.errors import shell_path
from podexp.io import append_line, atomic_write_text, read_jsonl, write_jsonl
from podexp.keys import configuration_name, job_folder_name

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
        write_jsonl(kept, self.jsonl)
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


WANDB_GROUP_LIMIT = 128  # W&B refuses longer group names


def wandb_group(cfg, name: str, overrides: list[str]) -> str:
    """``logger.group``, or when it is null ``<name>:<configuration>``: the experiment and the job's overrides
    without the seed and the result-neutral keys (``podexp.keys.configuration_name``, the sweep summary's
    rows), so the seeds of one configuration fold into one group; shortened like a job folder's name."""
    if cfg.get("group"):
        return str(cfg.group)
    return job_folder_name(f"{name}:{configuration_name(overrides)}", limit=WANDB_GROUP_LIMIT)


# the W&B x axes: epoch rows against "epoch", the running metrics of logger.log_every_n_steps against "step"
EPOCH_AXIS, STEP_AXIS, STEP_PREFIX = "epoch", "global_step", "step/"


class WandbLogger:
    """A W&B run for one training job (``job_type`` train): the resolved config with the Hydra ``choices``
    as top-level ``<group>_choice`` keys to filter on, one row per epoch, the result in the summary.
    Failures to start never stop training."""

    def __init__(
        self,
        cfg,
        resolved: dict,
        out_dir: Path,
        job_name: str,
        run_id: str | None = None,
        *,
        overrides: list[str] = (),
        choices: dict | None = None,
    ):
        self.run = None
        self.log_every_n_steps = int(cfg.get("log_every_n_steps") or 0)
        settings = dict(
            project=cfg.project,
            entity=cfg.get("entity"),
            group=wandb_group(cfg, str(resolved.get("name", "")), list(overrides)),
            job_type="train",
            tags=list(cfg.get("tags") or []),
            name=job_name,
            config={**resolved, **{f"{k.replace('/', '_')}_choice": v for k, v in (choices or {}).items()}},
            dir=str(out_dir),
            id=run_id,
            resume="allow" if run_id else None,
            reinit="finish_previous",
        )
        timeout = float(cfg.init_timeout)
        try:
            import wandb

            # a server that never answers blocks init for the timeout (W&B's own default: 90 s)
            settings["settings"] = wandb.Settings(init_timeout=timeout)
            self.run = wandb.init(mode=cfg.get("mode") or None, **settings)
        except Exception as err:  # wandb down or silent past logger.init_timeout, bad key, bad mode: keep training
            log.warning(
                "W&B could not start (%s: %s; it waits logger.init_timeout=%g s for the server).",
                err.__class__.__name__,
                err,
                timeout,
            )
            self._fall_back_to_offline(settings, out_dir)
        self._safely("define_metric", self._define_axes)

    def _define_axes(self) -> None:
        self.run.define_metric(EPOCH_AXIS)
        self.run.define_metric(STEP_AXIS)
        self.run.define_metric(f"{STEP_PREFIX}*", step_metric=STEP_AXIS)
        for key in ("train_*", "test_*", "val_*", "best_*", "lr", "v", "epoch_time", "skipped_steps"):
            self.run.define_metric(key, step_metric=EPOCH_AXIS)

    def _fall_back_to_offline(self, settings: dict, out_dir: Path) -> None:
        """Log into an offline W&B run that ``wandb sync`` can upload later; else local logs only."""
        try:
            import wandb

            self.run = wandb.init(mode="offline", **settings)
            log.warning(
                "The run went offline: training goes on with an offline W&B run (and metrics.jsonl/csv in %s). "
                "Upload it later with `wandb sync %s/wandb/offline-run-*` once W&B is reachable.",
                shell_path(out_dir),
                shell_path(out_dir),
            )
        except Exception as err:
            log.warning(
                "Offline W&B failed too (%s: %s). Training goes on with metrics.jsonl/csv in %s "
                "only; fix W&B (`wandb login`, logger.mode) for the next run.",
                err.__class__.__name__,
                err,
                out_dir,
            )

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def _safely(self, what: str, call) -> None:
        """W&B trouble in the middle of a run costs the W&B record, never the run."""
        if self.run is None:
            return
        try:
            call()
        except Exception as err:
            log.warning("W&B %s failed (%s: %s); metrics.jsonl/csv are unaffected.", what, err.__class__.__name__, err)

    def log(self, row: dict) -> None:
        self._safely("log", lambda: self.run.log(row))

    def log_step(self, global_step: int, running: dict) -> None:
        """The epoch's running train metrics so far at ``global_step`` (``logger.log_every_n_steps``)."""
        row = {f"{STEP_PREFIX}{k}": v for k, v in running.items()}
        self._safely("log", lambda: self.run.log({STEP_AXIS: global_step, **row}))

    def summary(self, result: dict) -> None:
        scalars = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
        self._safely("summary", lambda: self.run.summary.update(scalars))

    def finish(self, exit_code: int = 0) -> None:
        self._safely("finish", lambda: self.run.finish(exit_code=exit_code))
        self.run = None
