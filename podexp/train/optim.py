"""Optimisers and per-step learning-rate schedules from the ``optim`` and ``sched`` config groups."""
from __future__ import annotations

import math

import torch

from podexp.errors import ConfigError, unknown_name

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("multistep", "cosine", "constant")


def param_groups(model: torch.nn.Module, loss: torch.nn.Module, cfg) -> list[dict]:
    """The backbone/FC1 parameters, then the loss's own groups (which may set lr or weight decay)."""
    groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    groups += loss.param_groups(cfg.lr)
    return groups


def build_optimizer(cfg, model, loss, device: torch.device) -> torch.optim.Optimizer:
    if cfg.name not in OPTIMIZERS:
        raise unknown_name("optim", cfg.name, OPTIMIZERS)
    if cfg.lr <= 0:
        raise ConfigError(f"optim.lr must be positive; got {cfg.lr}.")
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    groups = param_groups(model, loss, cfg)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.get("nesterov", False), **fast)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.get("betas", (0.9, 0.999))),
                             weight_decay=cfg.weight_decay, **fast)


def lr_factor(cfg, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Multiplier of the base lr after ``step`` optimiser steps.

    Linear warm-up over ``warmup_epochs``, then ``multistep`` (x gamma at each milestone epoch),
    ``cosine`` (half-cosine decay to ``min_factor`` at the end of training) or ``constant``.
    """
    warmup_steps = int(cfg.get("warmup_epochs", 0) * steps_per_epoch)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if cfg.name == "multistep":
        epoch = step // steps_per_epoch
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.name == "cosine":
        total = max(1, epochs * steps_per_epoch - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / total)
        floor = cfg.get("min_factor", 0.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def build_scheduler(cfg, optimizer, steps_per_epoch: int, epochs: int):
    if cfg.name not in SCHEDULES:
        raise unknown_name("sched", cfg.name, SCHEDULES)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch, epochs))
