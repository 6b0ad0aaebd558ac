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

from podexp.train.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


def _show_progress(setting) -> bool:
    return sys.stderr.isatty() if setting in (None, "auto") else bool(setting)


class Trainer:
    def __init__(self, cfg, model, loss_fn, loaders, device: torch.device):
        self.cfg, self.device = cfg, device
        self.model, self.loss_fn, self.loaders = model, loss_fn, loaders
        self.epochs = int(cfg.trainer.epochs)
        steps = len(loaders.train)
        self.optimizers = [build_optimizer(cfg.optim, model, loss_fn, device)
                           for _ in range(loss_fn.num_objectives)]
        self.schedulers = [build_scheduler(cfg.sched, opt, steps, self.epochs) for opt in self.optimizers]
        self.use_amp = device.type == "cuda" and cfg.trainer.amp
        self.epoch = 0            # the next epoch to run
        self.global_step = 0      # optimiser steps of objective 0 so far
        self.best_acc = float("-inf")

    # -- one batch ------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else nullcontext()

    def train_step(self, images, labels, stats) -> None:
        self.loss_fn.on_step(self.global_step)
        for objective, (opt, sched) in enumerate(zip(self.optimizers, self.schedulers)):
            with self.autocast():
                z = self.model(images)
            loss = self.loss_fn(z, labels, objective=objective)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if objective == 0:
                self._accumulate(stats, z.detach(), labels, loss.detach())
        self.global_step += 1

    def _accumulate(self, stats, z, labels, loss) -> None:
        z = z.float()
        correct = (self.loss_fn.predict(z).argmax(1) == labels).sum()
        n = labels.shape[0]
        stats += torch.stack([loss * n, correct.float(), torch.tensor(float(n), device=z.device),
                              z.norm(dim=1).sum()]).double()

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
        loader.set_epoch(epoch)
        stats = self._new_stats()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False,
                   disable=not _show_progress(self.cfg.trainer.progress))
        for images, labels in bar:
            self.train_step(images, labels, stats)
        self.loss_fn.on_epoch_end(epoch, lambda t: t)
        return self._summarise(stats, "train")

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        self.loss_fn.eval()
        stats = self._new_stats()
        for images, labels in self.loaders.test:
            with self.autocast():
                z = self.model(images)
            self._accumulate(stats, z, labels, self.loss_fn(z, labels).detach())
        return self._summarise(stats, "test")

    def fit(self, on_epoch_end=None) -> dict:
        """Train the remaining epochs; ``on_epoch_end(row)`` logs and checkpoints each one."""
        row = {}
        for epoch in range(self.epoch, self.epochs):
            self._maybe_reset_momentum(epoch)
            start = time.perf_counter()
            lr = self.optimizers[0].param_groups[0]["lr"]
            row = {"epoch": epoch, "lr": lr, **self.train_epoch(epoch), **self.evaluate()}
            row["epoch_time"] = time.perf_counter() - start
            row.update(self.loss_fn.state_metrics())
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
        return {"model": self.model.state_dict(), "loss": self.loss_fn.state_dict(),
                "optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers],
                "epoch": self.epoch, "global_step": self.global_step, "best_acc": self.best_acc,
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        for opt, s in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(s)
        for sched, s in zip(self.schedulers, state["schedulers"]):
            sched.load_state_dict(s)
        self.epoch, self.global_step, self.best_acc = state["epoch"], state["global_step"], state["best_acc"]
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
