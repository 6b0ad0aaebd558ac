"""The body of ``train.py``: compose everything from the config, train, write the results.

A run's folder holds ``config.yaml`` (resolved), ``metrics.jsonl``/``metrics.csv`` (one row per epoch),
``last.pt`` (+ ``prev.pt``), ``train.log`` and, at the end, ``model.pt`` (the weights alone) and ``result.json``,
after which the checkpoints ``trainer.keep_checkpoints`` does not keep are deleted. A job that fails with a
user error writes ``failed.json`` instead and, inside a multirun, lets the other jobs go on.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from podexp.compose import MODEL_FILE, build_run, model_file_state
from podexp.errors import PodexpError, shell_path, storage_error
from podexp.io import atomic_torch_save, atomic_write_json, atomic_write_text, prune_checkpoints
from podexp.keys import job_folder_name
from podexp.train import distributed, resume, signals
from podexp.train.callbacks import Checkpointer, MetricsWriter, MomentumReset, Preemption, WandbCallback
from podexp.train.describe import describe_run, hydra_choices, hydra_overrides
from podexp.train.loggers import WandbLogger
from podexp.train.loop import Trainer
from podexp.train.runlock import RunLock
from podexp.validate import validate_config

log = logging.getLogger(__name__)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise PodexpError(
            f"trainer.device={setting} but no CUDA device is visible. Use trainer.device=cpu or trainer.device=auto."
        )
    return torch.device(setting)


def _hydra_context() -> tuple[Path, bool, str]:
    """(output folder, whether this is a multirun job, job name) from Hydra, or defaults outside it."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        name = job_folder_name(hc.job.override_dirname) if hc.job.override_dirname else hc.job.name
        return Path(hc.runtime.output_dir), hc.mode == RunMode.MULTIRUN, name
    except (ImportError, ValueError):
        return Path.cwd(), False, "train"


def _callbacks(run, out_dir: Path, resolved: dict, metrics, wandb, resumed_wandb_id) -> list:
    """In hook order: rank 0 appends the epoch's row (and logs it to W&B) before ``last.pt`` is written,
    so a resumed run never lacks a row of an epoch its checkpoint has done."""
    checkpointer = None
    if run.settings.checkpoint:
        checkpointer = Checkpointer(out_dir, resolved, lambda: wandb.run_id if wandb is not None else resumed_wandb_id)
    callbacks = [
        metrics,
        WandbCallback(wandb) if wandb is not None else None,
        checkpointer,
        Preemption(out_dir, checkpointer, run.settings.preempt_check_every),
        MomentumReset(run.momentum_reset_epochs),
    ]
    return [c for c in callbacks if c is not None]


def train(cfg: DictConfig, out_dir: Path, job_name: str = "train") -> dict:
    """Train one configuration into ``out_dir`` and return its result record; rank 0 holds the folder's
    ``run.lock`` meanwhile (one run per folder)."""
    started = time.time()
    validate_config(cfg)
    ctx = distributed.from_env()  # rank 0 of 1 unless launched by torchrun; only rank 0 writes
    device = distributed.init(ctx, pick_device(cfg.trainer.device))
    out_dir = distributed.rank0_path(ctx, out_dir)  # every rank resumes from and finishes in one folder
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    # the signal handlers cover the setup too (data loading, model building): a SIGTERM there is taken at
    # the first step boundary like any other, instead of killing the process with 143
    with RunLock(out_dir) if ctx.is_main else nullcontext(), signals.preemption_handlers():
        return _train_locked(cfg, out_dir, job_name, ctx, device, started)


def _train_locked(cfg: DictConfig, out_dir: Path, job_name: str, ctx, device: torch.device, started: float) -> dict:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    allow_changes = bool(cfg.resume_allow_changes)
    done = resume.finished_result(out_dir, resolved, allow_changes) if cfg.get("resume") == "auto" else None
    if done is not None:
        log.info("%s already holds this finished run (result.json); not training again.", out_dir)
        distributed.shutdown()
        return done
    if ctx.is_main:
        (out_dir / "failed.json").unlink(missing_ok=True)  # from an earlier attempt
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    run = build_run(cfg, device, ctx.rank, ctx.world_size)
    if ctx.is_main:
        log.info("%s", describe_run(cfg, run, device, ctx.world_size))
    model = distributed.prepare_model(
        run.model, run.loss, ctx, device, sync_bn=run.settings.sync_bn, compile=run.settings.compile
    )
    state = resume.resume_state(cfg, resolved, out_dir, ctx.is_main)
    if ctx.is_main:  # after the resume check: a refused resume leaves the folder's config.yaml as it was
        atomic_write_text(OmegaConf.to_yaml(cfg, resolve=True), out_dir / "config.yaml")
        (out_dir / "result.json").unlink(missing_ok=True)  # a finished run continued to more epochs
    resumed_wandb_id = state.get("wandb_run_id") if state is not None else None
    use_wandb = cfg.logger.name == "wandb" and ctx.is_main
    wandb = None
    if use_wandb:
        wandb = WandbLogger(
            cfg.logger,
            resolved,
            out_dir,
            job_name,
            resumed_wandb_id,
            overrides=hydra_overrides(),
            choices=hydra_choices(),
        )
    metrics = MetricsWriter(out_dir) if ctx.is_main else None

    exit_code = 1
    try:
        trainer = Trainer(
            model,
            run.loss,
            run.loaders,
            run.optimizers,
            run.schedulers,
            run.settings,
            callbacks=_callbacks(run, out_dir, resolved, metrics, wandb, resumed_wandb_id),
            device=device,
            dist=ctx,
        )
        if state is not None:
            configured = resume.optimizer_settings(trainer.optimizers, trainer.schedulers)
            trainer.load_state_dict(state)
            if state["changed"]:  # resume_allow_changes=true or more epochs: the new values count from here
                resume.apply_optimizer_settings(configured, trainer.optimizers, trainer.schedulers)
        last = trainer.fit()
        if not last and metrics is not None:  # resumed after its last epoch
            last = metrics.last_row()
        val = {"final_val_acc": last.get("val_acc")} if "val_acc" in last else {}
        result = {
            "status": "completed",
            "config": resolved,
            "seed": cfg.seed,
            "git_commit": git_commit(),
            "final_test_acc": last.get("test_acc"),
            **val,
            **trainer.best,  # best_val_acc + test_acc_at_best_val with a validation split, else best_test_acc
            "final_train_acc": last.get("train_acc"),
            "epochs": trainer.epoch,
            "total_time_s": time.time() - started,
            "device": str(device),
        }
        if ctx.is_main:  # model.pt before result.json: a finished run always has its weights
            atomic_torch_save(model_file_state(resolved, distributed.unwrap(model), run.loss), out_dir / MODEL_FILE)
            atomic_write_json(result, out_dir / "result.json")
            prune_checkpoints(out_dir, run.settings.keep_checkpoints)
        if wandb is not None:
            wandb.summary(result)
        exit_code = 0
        best = ", ".join(f"{k} {v:.2f}%" for k, v in trainer.best.items())
        log.info("final test accuracy %.2f%% (%s); results in %s", result["final_test_acc"], best, out_dir)
        return result
    finally:
        if wandb is not None:
            wandb.finish(exit_code)
        distributed.shutdown()


def _record_failure(record: dict, out_dir: Path) -> None:
    """``failed.json`` in the run folder, unless that folder cannot be written (the error says so)."""
    try:
        atomic_write_json(record, out_dir / "failed.json")
    except OSError as err:
        log.warning("Could not write %s (%s).", out_dir / "failed.json", err)


def optimized_value(cfg: DictConfig, result: dict | None) -> float:
    """The number a Hydra sweeper (Optuna) optimises: ``result[cfg.optimized_metric]``; -inf for a failed or
    diverged job or a non-finite value, so that a maximising sweep ranks it last and goes on (NaN stops
    the Optuna sweeper)."""
    value = None if result is None else result.get(cfg.get("optimized_metric") or "final_test_acc")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else float("-inf")


def main(cfg: DictConfig) -> float:
    """Hydra task: train, turning user errors (bad input, a folder that cannot be written, Ctrl-C before
    training) into one paragraph and an exit code instead of a traceback; returns the run's
    ``optimized_metric`` (``optimized_value``)."""
    out_dir, multirun, job_name = _hydra_context()
    return optimized_value(cfg, _train_reporting_errors(cfg, out_dir, multirun, job_name))


def _train_reporting_errors(cfg: DictConfig, out_dir: Path, multirun: bool, job_name: str) -> dict | None:
    """``train``'s result, or None for a sweep job that failed (recorded in its ``failed.json``)."""
    try:
        try:
            return train(cfg, out_dir, job_name)
        except OSError as err:  # the run folder cannot be written: one paragraph, not a traceback
            problem = storage_error(err)
            if problem is None:
                raise
            raise problem from None
    except signals.Preempted as stop:
        print(f"\n{stop}\n", file=sys.stderr)
        raise
    except KeyboardInterrupt:
        print(
            f"\nInterrupted (Ctrl-C) outside the training steps; {shell_path(out_dir)} keeps its last checkpoint, "
            f"if any (resume=auto continues from it).\n",
            file=sys.stderr,
        )
        sys.exit(signals.EXIT_INTERRUPTED)
    except PodexpError as err:
        if not getattr(err, "leaves_folder_alone", False):  # the folder may be another run's (run.lock)
            _record_failure({"status": getattr(err, "status", "failed"), "error": str(err)}, out_dir)
        if not multirun:
            print(f"\nerror: {err}\n", file=sys.stderr)
            sys.exit(err.exit_code)
        log.error("job %s failed: %s", job_name, err)
    except Exception as err:
        if not multirun:
            raise
        _record_failure(
            {"status": "failed", "error": f"{err.__class__.__name__}: {err}", "traceback": traceback.format_exc()},
            out_dir,
        )
        log.exception("job %s failed; the other jobs of the sweep go on", job_name)
    return None
