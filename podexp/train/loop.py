"""The training loop: every loss through the same steps, no special cases by name.

Per batch (``Trainer.step``), for each of the loss's ``num_objectives`` objectives: forward (bf16
autocast on CUDA), the loss in fp32, backward, that objective's optimiser step, guarded against
non-finite values; then the schedules step. Under ``trainer.cuda_graph`` the device part of the step
(``Trainer.device_step``) is replayed as one CUDA graph (``podexp.train.graph``). Metrics accumulate
on the device (``EpochStats``) and are read once per epoch, so the step has no host synchronisation.
What happens around the steps (metrics files, checkpoints, W&B, preemption, momentum resets) is done by
callbacks (``podexp.train.callbacks``).
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from podexp.settings import TrainerSettings
from podexp.train.distributed import Dist, unwrap
from podexp.train.divergence import NonFiniteGuard, check_finite_state, check_skip_fraction
from podexp.train.graph import graph_step
from podexp.train.resume import rng_state, set_rng_state

log = logging.getLogger(__name__)


def _show_progress(setting) -> bool:
    return sys.stderr.isatty() if setting in (None, "auto") else bool(setting)


@dataclass
class EpochStats:
    """Sums over the samples of an epoch (or of the test split), kept in one float64 device tensor
    ``values`` = (loss_sum, correct, count, norm_sum) so that adding a batch needs no host sync."""

    values: torch.Tensor

    @classmethod
    def zeros(cls, device: torch.device) -> "EpochStats":
        return cls(torch.zeros(4, dtype=torch.float64, device=device))

    def add(self, loss: torch.Tensor, hits: torch.Tensor, z: torch.Tensor, keep: torch.Tensor | None = None) -> None:
        """Add a batch: its mean ``loss``, ``hits`` (B booleans: prediction correct) and float latents
        ``z`` (B x d). A batch whose ``keep`` flag is false (a skipped step) adds nothing."""
        n = hits.shape[0]
        batch = torch.stack([loss * n, hits.sum().float(), z.new_full((), float(n)), z.norm(dim=1).sum()]).double()
        self.values += batch if keep is None else torch.where(keep, batch, 0.0)

    def reduced(self, all_reduce) -> "EpochStats":
        """These sums over all ranks (``Dist.all_reduce``)."""
        return EpochStats(all_reduce(self.values))

    @property
    def loss_sum(self) -> float:
        return float(self.values[0])

    @property
    def correct(self) -> float:
        return float(self.values[1])

    @property
    def count(self) -> float:
        return float(self.values[2])

    @property
    def norm_sum(self) -> float:
        return float(self.values[3])

    def summary(self, prefix: str) -> dict:
        """``{prefix}_loss``, ``{prefix}_acc`` (%) and ``{prefix}_latent_norm``: per-sample means (nan when
        no sample was counted)."""
        loss_sum, correct, count, norm_sum = self.values.tolist()  # one host read
        if count == 0:  # every step skipped: nothing was measured, which is not a loss of 0
            return {
                f"{prefix}_loss": float("nan"),
                f"{prefix}_acc": float("nan"),
                f"{prefix}_latent_norm": float("nan"),
            }
        return {
            f"{prefix}_loss": loss_sum / count,
            f"{prefix}_acc": 100.0 * correct / count,
            f"{prefix}_latent_norm": norm_sum / count,
        }


def clip_gradients(optimizer, max_norm: float) -> None:
    """Scale the gradients of ``optimizer``'s parameters so that their global L2 norm is at most ``max_norm``
    (``trainer.grad_clip``; a non-finite norm leaves them non-finite for the guard to catch)."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if params:
        torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


class Trainer:
    """Trains ``model`` (already wrapped for DDP / torch.compile where asked) with ``loss``.

    ``optimizers``/``schedulers`` hold one per loss objective. ``callbacks`` get the hooks of
    ``podexp.train.callbacks.Callback``. State for an exact resume: ``state_dict``/``load_state_dict``.
    """

    def __init__(
        self,
        model,
        loss,
        loaders,
        optimizers,
        schedulers,
        settings: TrainerSettings,
        *,
        callbacks=(),
        device: torch.device,
        dist: Dist | None = None,
    ):
        self.model, self.loss, self.loaders = model, loss, loaders
        loss.check_label_range_on_host = False  # the loaders' labels were range-checked when read
        self.optimizers, self.schedulers, self.settings = list(optimizers), list(schedulers), settings
        self.callbacks = list(callbacks)
        self.device = device
        self.dist = dist or Dist()  # torchrun rank/world size; sums metrics over ranks
        self.use_amp = device.type == "cuda" and settings.amp
        self.compiled = hasattr(model, "_orig_mod")  # trainer.compile wrapped it in torch.compile
        self.epoch = 0  # the next epoch to run
        self.global_step = 0  # optimiser steps of objective 0 so far
        self.step_in_epoch = 0  # batches of the current epoch done (nonzero in a mid-epoch checkpoint)
        self.best = {}  # the best epoch's best_* values (track_best)
        self.stats = EpochStats.zeros(device)  # the current epoch's train metrics
        self.epoch_head = {}  # the current epoch's row head: epoch, lr, loss state
        self.guard = NonFiniteGuard(
            settings.on_nan, self.optimizers, (model, loss), len(loaders.train), 0, settings.nan_check_every, device
        )
        self.graph = graph_step(self)  # trainer.cuda_graph: None = eager steps

    def _emit(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # -- one batch ------------------------------------------------------------------------------
    def autocast(self):
        """bf16 autocast on CUDA; without its weight-cast cache under a CUDA graph (PyTorch's rule for
        capturing autocast regions)."""
        if not self.use_amp:
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=self.graph is None)

    def forward(self, model, images):
        """z = model(images) under autocast. A compiled model is told that a new step begins: in
        ``reduce-overhead`` mode its CUDA graphs reuse their output memory, and nothing here keeps a
        previous forward's output."""
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()
        with self.autocast():
            return model(images)

    def step(self, images, labels) -> None:
        """Train on one batch: ``device_step`` (replayed as a CUDA graph under ``trainer.cuda_graph``),
        then every objective's schedule step."""
        self.loss.on_step(self.global_step)
        if self.graph is not None:
            self.graph(images, labels)
        else:
            self.device_step(images, labels)
        for sched in self.schedulers:  # after all objectives: objective i's step reads only optimiser i's lr
            sched.step()
        self.global_step += 1

    def device_step(self, images, labels) -> None:
        """The device work of a step: every objective's forward, loss, backward and guarded optimiser step;
        objective 0's loss, accuracy and latent norm go into ``self.stats``. With fused optimisers it makes
        no host read (``podexp.train.graph`` captures it)."""
        self.guard.begin_batch()
        for objective, opt in enumerate(self.optimizers):
            z = self.forward(self.model, images)
            loss = self.loss(z, labels, objective=objective)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.settings.grad_clip is not None:
                clip_gradients(opt, self.settings.grad_clip)
            bad = self.guard.step_optimizer(opt, loss, objective)
            if objective == 0:
                self._record(self.stats, z.detach(), labels, loss.detach(), keep=~bad)  # skipped: left out
        self.guard.end_batch()

    def _record(self, stats: EpochStats, z, labels, loss, keep=None) -> None:
        z = z.float()
        stats.add(loss, self.loss.predict(z).argmax(1) == labels, z, keep)

    # -- epochs ---------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        """The epoch's remaining batches (all of them unless resumed mid-epoch), then the loss's
        end-of-epoch update; returns the train part of the epoch's metrics row."""
        self.model.train()
        self.loss.train()
        loader = self.loaders.train
        loader.set_epoch(epoch, self.step_in_epoch)
        if self.step_in_epoch == 0:
            self.stats.values.zero_()  # in place: a CUDA graph of the step adds into this tensor
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{self.settings.epochs}",
            leave=False,
            position=1,  # under the bar over epochs (fit)
            initial=self.step_in_epoch,
            total=len(loader),
            disable=not _show_progress(self.settings.progress),
        )
        for images, labels in bar:
            self.step(images, labels)
            self.step_in_epoch += 1
            self.guard.poll(self.step_in_epoch)
            self._emit("on_step_end")
        self.step_in_epoch = 0
        self.loss.on_epoch_end(epoch, self.dist.all_reduce)
        skipped = self.guard.end_epoch()
        if self.settings.on_nan == "skip":
            check_skip_fraction(skipped, len(loader), self.settings.max_skip_fraction, epoch)
        return {**self.stats.reduced(self.dist.all_reduce).summary("train"), "skipped_steps": skipped}

    @torch.no_grad()
    def evaluate(self, loader=None, prefix: str = "test") -> dict:
        """Loss, accuracy and latent norm on ``loader`` (default: the test split) as ``{prefix}_*``, in eval
        mode, summed over ranks."""
        self.model.eval()
        self.loss.eval()
        stats = EpochStats.zeros(self.device)
        model = self.dist.for_eval(self.model)
        for images, labels in self.loaders.test if loader is None else loader:
            z = self.forward(model, images)
            self._record(stats, z, labels, self.loss(z, labels).detach())
        return stats.reduced(self.dist.all_reduce).summary(prefix)

    def evaluate_all(self) -> dict:
        """The validation split's metrics (``val_*``, when there is one) and the test split's."""
        val = self.loaders.val
        return {**(self.evaluate(val, "val") if val is not None else {}), **self.evaluate()}

    def track_best(self, row: dict) -> dict:
        """Update the best epoch with ``row`` and return the row's ``best_*`` columns. With a validation
        split the best epoch is the one of the highest ``val_acc`` (the first, on ties) and its test
        accuracy is ``test_acc_at_best_val``; without one, ``best_test_acc`` is the highest test accuracy."""
        if "val_acc" in row:
            if row["val_acc"] > self.best.get("best_val_acc", float("-inf")):  # (a resumed pre-val checkpoint)
                self.best = {"best_val_acc": row["val_acc"], "test_acc_at_best_val": row["test_acc"]}
        else:
            self.best = {"best_test_acc": max(self.best.get("best_test_acc", float("-inf")), row["test_acc"])}
        return dict(self.best)

    def check_finite(self) -> None:
        """Stop (``DivergenceError`` naming them) when a weight or buffer of model or loss is not finite, e.g.
        an overflowed BatchNorm statistic or v: called at every epoch end and before a preemption checkpoint,
        so no checkpoint or metrics row holds such a state."""
        check_finite_state(self.epoch, self.step_in_epoch, model=unwrap(self.model), loss=self.loss)

    @staticmethod
    def _duration(seconds: float) -> str:
        minutes, secs = divmod(int(round(seconds)), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}"

    def fit(self) -> dict:
        """Train the remaining epochs; returns the last epoch's metrics row (``{}`` if none was left).
        Each epoch is logged with its time and the run's ETA (the mean epoch time of this session times
        the epochs left); on a terminal an outer bar counts the epochs."""
        self._emit("on_fit_start")
        row = {}
        epochs = self.settings.epochs
        bar = tqdm(
            total=epochs,
            initial=self.epoch,
            desc="epochs",
            unit="epoch",
            position=0,
            disable=not _show_progress(self.settings.progress),
        )
        session_start, done_here = time.perf_counter(), 0
        for epoch in range(self.epoch, epochs):
            start = time.perf_counter()
            if self.step_in_epoch == 0:  # not resuming mid-epoch
                self._emit("on_epoch_start", epoch)
                lr = self.optimizers[0].param_groups[0]["lr"]
                in_use = self.loss.state_metrics()  # e.g. the v used during this epoch
                self.epoch_head = {"epoch": epoch, "lr": lr, **in_use}
            row = {**self.epoch_head, **self.train_epoch(epoch), **self.evaluate_all()}
            row["epoch_time"] = time.perf_counter() - start
            self.epoch = epoch + 1
            self.check_finite()  # before the epoch is logged or checkpointed, with or without checkpoints
            row.update(self.track_best(row))
            done_here += 1
            eta = (time.perf_counter() - session_start) / done_here * (epochs - self.epoch)
            val = f"  val acc {row['val_acc']:.2f}" if "val_acc" in row else ""
            log.info(
                "epoch %d/%d  train loss %.4f acc %.2f%s  test loss %.4f acc %.2f  (%.1fs, ETA %s)",
                epoch + 1,
                epochs,
                row["train_loss"],
                row["train_acc"],
                val,
                row["test_loss"],
                row["test_acc"],
                row["epoch_time"],
                self._duration(eta),
            )
            bar.update(1)
            self._emit("on_epoch_end", row)
        bar.close()
        return row

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        mid_epoch = self.step_in_epoch > 0
        return {
            "model": unwrap(self.model).state_dict(),
            "loss": self.loss.state_dict(),
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best": self.best,
            "step_in_epoch": self.step_in_epoch,
            "epoch_head": self.epoch_head,
            "partial_stats": self.stats.values.cpu() if mid_epoch else None,
            "guard": self.guard.state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.loss.load_state_dict(state["loss"])
        for opt, s in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(s)
        for sched, s in zip(self.schedulers, state["schedulers"]):
            sched.load_state_dict(s)
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.best = state.get("best", {"best_test_acc": state.get("best_acc", float("-inf"))})
        self.step_in_epoch, self.epoch_head = state.get("step_in_epoch", 0), state.get("epoch_head", {})
        partial = state.get("partial_stats")
        if partial is not None:
            self.stats.values.copy_(partial)
        if "guard" in state:
            self.guard.load_state_dict(state["guard"])
        set_rng_state(state["rng"])
