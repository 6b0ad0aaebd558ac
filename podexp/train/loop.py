"""The training loop: every loss through the same steps, no special cases by name.

Per batch, for each of the loss's ``num_objectives`` objectives: forward (bf16 autocast on CUDA),
the loss in fp32, backward, that objective's optimiser and schedule step. Metrics accumulate on the
device and are read once per epoch, so the step has no host synchronisation.
"""
from __future__ import annotations

import logging
import sys
import time
from contextlib import nullcontext

import torch
from tqdm.auto import tqdm

from podexp.train import signals
from podexp.train.distributed import Dist, unwrap
from podexp.train.divergence import NonFiniteGuard
from podexp.optim import build_optimizer, build_scheduler
from podexp.train.resume import rng_state, set_rng_state

log = logging.getLogger(__name__)


def _show_progress(setting) -> bool:
    return sys.stderr.isatty() if setting in (None, "auto") else bool(setting)


class Trainer:
    def __init__(self, cfg, model, loss_fn, loaders, device: torch.device, dist: Dist | None = None):
        self.cfg, self.device = cfg, device
        self.dist = dist or Dist()    # torchrun rank/world size; sums metrics over ranks
        self.model, self.loss_fn, self.loaders = model, loss_fn, loaders
        self.epochs = int(cfg.trainer.epochs)
        steps = len(loaders.train)
        self.optimizers = [build_optimizer(cfg.optim, model, loss_fn, device)
                           for _ in range(loss_fn.num_objectives)]
        self.schedulers = [build_scheduler(cfg.sched, opt, steps, self.epochs) for opt in self.optimizers]
        self.use_amp = device.type == "cuda" and cfg.trainer.amp
        self.compiled = hasattr(model, "_orig_mod")     # trainer.compile wrapped it in torch.compile
        self.epoch = 0            # the next epoch to run
        self.global_step = 0      # optimiser steps of objective 0 so far
        self.best_acc = float("-inf")
        # a mid-epoch checkpoint (preemption) holds the batches done, the partial stats, the row head
        self.step_in_epoch, self.partial_stats, self.epoch_head = 0, None, {}
        self.guard = NonFiniteGuard(cfg.trainer.get("on_nan", "stop"), self.optimizers, (model, loss_fn),
                                    steps, 0, cfg.trainer.get("nan_check_every", 50), device)
        self.on_preempt = None    # called at the step boundary after SIGTERM/SIGUSR1 (run.py saves, exits)

    # -- one batch ------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else nullcontext()

    def forward(self, model, images):
        """z = model(images) under autocast. A compiled model is told that a new step begins: in
        ``reduce-overhead`` mode its CUDA graphs reuse their output memory, and nothing here keeps a
        previous forward's output."""
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()
        with self.autocast():
            return model(images)

    def train_step(self, images, labels, stats) -> None:
        self.loss_fn.on_step(self.global_step)
        self.guard.begin_batch()
        for objective, (opt, sched) in enumerate(zip(self.optimizers, self.schedulers)):
            z = self.forward(self.model, images)
            loss = self.loss_fn(z, labels, objective=objective)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            bad = self.guard.step_optimizer(opt, loss, objective)
            sched.step()
            if objective == 0:
                self._accumulate(stats, z.detach(), labels, loss.detach(), keep=~bad)
        self.guard.end_batch()
        self.global_step += 1

    def _accumulate(self, stats, z, labels, loss, keep=None) -> None:
        z = z.float()
        correct = (self.loss_fn.predict(z).argmax(1) == labels).sum()
        n = labels.shape[0]
        batch = torch.stack([loss * n, correct.float(), z.new_full((), float(n)),
                             z.norm(dim=1).sum()]).double()
        stats += batch if keep is None else torch.where(keep, batch, 0.0)   # skipped steps left out

    # -- epochs ---------------------------------------------------------------------------------
    def _new_stats(self):
        return torch.zeros(4, dtype=torch.float64, device=self.device)

    @staticmethod
    def _summarise(stats, prefix) -> dict:
        loss_sum, correct, count, norm_sum = stats.tolist()
        count = max(count, 1.0)
        return {f"{prefix}_loss": loss_sum / count, f"{prefix}_acc": 100.0 * correct / count,
                f"{prefix}_latent_norm": norm_sum / count}

    def train_epoch(self, epoch: int) -> dict:
        self.model.train()
        self.loss_fn.train()
        loader = self.loaders.train
        loader.set_epoch(epoch, self.step_in_epoch)
        stats = self.partial_stats if self.step_in_epoch else self._new_stats()
        self.partial_stats = stats
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, initial=self.step_in_epoch,
                   total=len(loader), disable=not _show_progress(self.cfg.trainer.progress))
        for images, labels in bar:
            self.train_step(images, labels, stats)
            self.step_in_epoch += 1
            self.guard.poll(self.step_in_epoch)
            if self.on_preempt is not None and signals.requested_by_all(
                    self.dist, self.step_in_epoch, self.guard.check_every, self.device):
                self.on_preempt()
        self.step_in_epoch, self.partial_stats = 0, None
        self.loss_fn.on_epoch_end(epoch, self.dist.all_reduce)
        skipped = self.guard.end_epoch()
        return {**self._summarise(self.dist.all_reduce(stats), "train"), "skipped_steps": skipped}

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        self.loss_fn.eval()
        stats = self._new_stats()
        model = self.dist.for_eval(self.model)
        for images, labels in self.loaders.test:
            z = self.forward(model, images)
            self._accumulate(stats, z, labels, self.loss_fn(z, labels).detach())
        return self._summarise(self.dist.all_reduce(stats), "test")

    def fit(self, on_epoch_end=None) -> dict:
        """Train the remaining epochs; ``on_epoch_end(row)`` logs and checkpoints each one."""
        row = {}
        for epoch in range(self.epoch, self.epochs):
            start = time.perf_counter()
            if self.step_in_epoch == 0:    # not resuming mid-epoch
                self._maybe_reset_momentum(epoch)
                lr = self.optimizers[0].param_groups[0]["lr"]
                in_use = self.loss_fn.state_metrics()       # e.g. the v used during this epoch
                self.epoch_head = {"epoch": epoch, "lr": lr, **in_use}
            row = {**self.epoch_head, **self.train_epoch(epoch), **self.evaluate()}
            row["epoch_time"] = time.perf_counter() - start
            self.epoch = epoch + 1
            self.best_acc = max(self.best_acc, row["test_acc"])
            row["best_test_acc"] = self.best_acc
            log.info("epoch %d/%d  train loss %.4f acc %.2f  test loss %.4f acc %.2f  (%.1fs)", epoch + 1,
                     self.epochs, row["train_loss"], row["train_acc"], row["test_loss"], row["test_acc"],
                     row["epoch_time"])
            if on_epoch_end is not None:
                on_epoch_end(row)
        return row

    def _maybe_reset_momentum(self, epoch: int) -> None:
        """The authors' code rebuilds its optimiser at each lr milestone, dropping the momentum."""
        if self.cfg.optim.get("reset_momentum_at_milestones") and epoch in set(self.cfg.sched.get("milestones", [])):
            for opt in self.optimizers:
                opt.state.clear()

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": unwrap(self.model).state_dict(), "loss": self.loss_fn.state_dict(),
                "optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers],
                "epoch": self.epoch, "global_step": self.global_step, "best_acc": self.best_acc,
                "step_in_epoch": self.step_in_epoch, "epoch_head": self.epoch_head,
                "partial_stats": None if self.partial_stats is None else self.partial_stats.cpu(),
                "guard": self.guard.state_dict(), "rng": rng_state()}

    def load_state_dict(self, state: dict) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        for opt, s in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(s)
        for sched, s in zip(self.schedulers, state["schedulers"]):
            sched.load_state_dict(s)
        self.epoch, self.global_step, self.best_acc = state["epoch"], state["global_step"], state["best_acc"]
        self.step_in_epoch, self.epoch_head = state.get("step_in_epoch", 0), state.get("epoch_head", {})
        partial = state.get("partial_stats")
        self.partial_stats = None if partial is None else partial.to(self.device)
        if "guard" in state:
            self.guard.load_state_dict(state["guard"])
        set_rng_state(state["rng"])
