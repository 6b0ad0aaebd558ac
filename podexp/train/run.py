"""The body of ``train.py``: compose everything from the config, train, write the results.

A run's folder holds ``config.yaml`` (resolved), ``metrics.jsonl``/``metrics.csv`` (one row per epoch),
``last.pt`` (+ ``prev.pt``), ``train.log`` and, at the end, ``result.json``. A job that fails with a
user error writes ``failed.json`` instead and, inside a multirun, lets the other jobs go on.
"""
from __future__ import annotations

import logging
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from podexp.data import build_loaders
from podexp.errors import PodexpError
from podexp.losses import build as build_loss
from podexp.models import build_model
from podexp.io import atomic_write_json, atomic_write_text, save_checkpoint
from podexp.train.loggers import LocalMetrics, WandbLogger
from podexp.train import distributed, resume, signals
from podexp.train.loop import Trainer
from podexp.validate import validate_config

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise PodexpError(f"trainer.device={setting} but no CUDA device is visible. "
                          f"Use trainer.device=cpu or trainer.device=auto.")
    return torch.device(setting)


def _hydra_context() -> tuple[Path, bool, str]:
    """(output folder, whether this is a multirun job, job name) from Hydra, or defaults outside it."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        name = hc.job.override_dirname or hc.job.name
        return Path(hc.runtime.output_dir), hc.mode == RunMode.MULTIRUN, name
    except (ImportError, ValueError):
        return Path.cwd(), False, "train"


def build_components(cfg: DictConfig, device: torch.device, rank: int = 0, world_size: int = 1):
    """(loaders, model, loss) for ``cfg``, on ``device``; model and loss are freshly initialised.

    ``rank``/``world_size`` (torchrun) give this process its shard of every batch.
    """
    channels_last = bool(cfg.trainer.channels_last)     # NHWC convolutions: faster on GPUs and CPUs alike
    loaders = build_loaders(cfg.dataset, seed=cfg.seed, device=device, channels_last=channels_last,
                            rank=rank, world_size=world_size)
    model = build_model(cfg.backbone, in_channels=cfg.dataset.channels, stem=cfg.dataset.stem,
                        latent_dim=cfg.dataset.latent_dim)
    loss_params = {k: v for k, v in cfg.loss.items() if k != "name"}
    loss_fn = build_loss(cfg.loss.name, num_classes=loaders.num_classes,
                         latent_dim=cfg.dataset.latent_dim, **loss_params)
    model.to(device)
    loss_fn.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return loaders, model, loss_fn


def train(cfg: DictConfig, out_dir: Path, job_name: str = "train") -> dict:
    """Train one configuration into ``out_dir`` and return its result record."""
    started = time.time()
    validate_config(cfg)
    ctx = distributed.from_env()          # rank 0 of 1 unless launched by torchrun; only rank 0 writes
    device = distributed.init(ctx, pick_device(cfg.trainer.device))
    out_dir = distributed.rank0_path(ctx, out_dir)     # every rank resumes from and finishes in one folder
    done = resume.finished_result(out_dir) if cfg.get("resume") == "auto" else None
    if done is not None:
        log.info("%s already holds a finished run (result.json); not training again.", out_dir)
        distributed.shutdown()
        return done
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "failed.json").unlink(missing_ok=True)   # from an earlier attempt
    resolved = OmegaConf.to_container(cfg, resolve=True)
    seed_everything(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    loaders, model, loss_fn = build_components(cfg, device, ctx.rank, ctx.world_size)
    model = distributed.prepare_model(model, loss_fn, ctx, device, sync_bn=cfg.trainer.sync_bn,
                                      compile=cfg.trainer.compile)
    trainer = Trainer(cfg, model, loss_fn, loaders, device, ctx)
    wandb_run_id = resume.restore(trainer, cfg, resolved, out_dir)
    if ctx.is_main:    # after restore: a refused resume leaves the folder's config.yaml as it was
        atomic_write_text(OmegaConf.to_yaml(cfg, resolve=True), out_dir / "config.yaml")

    metrics = LocalMetrics(out_dir) if ctx.is_main else None
    if metrics is not None:
        metrics.truncate_after(trainer.epoch)
    use_wandb = cfg.logger.name == "wandb" and ctx.is_main
    wandb = WandbLogger(cfg.logger, resolved, out_dir, job_name, wandb_run_id) if use_wandb else None

    def checkpoint():
        save_checkpoint({**trainer.state_dict(), "config": resolved,
                         "config_hash": resume.config_hash(resolved),
                         "wandb_run_id": wandb.run_id if wandb is not None else wandb_run_id}, out_dir)

    def on_preempt():
        saved = bool(cfg.trainer.checkpoint)
        if saved and ctx.is_main:
            checkpoint()
        message = resume.preemption_message(out_dir, saved, trainer.epoch, trainer.step_in_epoch)
        raise signals.Preempted(message)

    def on_epoch_end(row):
        if not ctx.is_main:
            return
        metrics.log(row)
        if wandb is not None:
            wandb.log(row)
        if cfg.trainer.checkpoint:
            checkpoint()

    exit_code = 1
    try:
        trainer.on_preempt = on_preempt
        with signals.preemption_handlers():
            last = trainer.fit(on_epoch_end)
        if not last and metrics is not None:                      # resumed after its last epoch
            last = (metrics.rows() or [{}])[-1]
        result = {"status": "completed", "config": resolved, "seed": cfg.seed, "git_commit": git_commit(),
                  "final_test_acc": last.get("test_acc"), "best_test_acc": trainer.best_acc,
                  "final_train_acc": last.get("train_acc"), "epochs": trainer.epoch,
                  "total_time_s": time.time() - started, "device": str(device)}
        if ctx.is_main:
            atomic_write_json(result, out_dir / "result.json")
        if wandb is not None:
            wandb.summary(result)
        exit_code = 0
        log.info("final test accuracy %.2f%% (best %.2f%%); results in %s", result["final_test_acc"],
                 result["best_test_acc"], out_dir)
        return result
    finally:
        if wandb is not None:
            wandb.finish(exit_code)
        distributed.shutdown()


def main(cfg: DictConfig):
    """Hydra task: train, turning user errors into one paragraph instead of a traceback."""
    out_dir, multirun, job_name = _hydra_context()
    try:
        return train(cfg, out_dir, job_name)
    except signals.Preempted as stop:
        print(f"\n{stop}\n", file=sys.stderr)
        raise
    except PodexpError as err:
        atomic_write_json({"status": "failed", "error": str(err)}, out_dir / "failed.json")
        if not multirun:
            print(f"\nerror: {err}\n", file=sys.stderr)
            sys.exit(2)
        log.error("job %s failed: %s", job_name, err)
    except Exception as err:
        if not multirun:
            raise
        atomic_write_json({"status": "failed", "error": f"{err.__class__.__name__}: {err}",
                           "traceback": traceback.format_exc()}, out_dir / "failed.json")
        log.exception("job %s failed; the other jobs of the sweep go on", job_name)
    return None
