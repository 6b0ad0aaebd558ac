"""Optimisers and per-step learning-rate schedules, by name, from the ``optim`` and ``sched`` config groups.

Both are registries: an optimiser is ``fn(param_groups, kernel, **options)`` (``kernel``: the fused or
foreach implementation flags), a schedule ``fn(steps_per_epoch, epochs, **options)`` returning the
multiplier of the base lr after a number of optimiser steps. Options left out come from
``configs/optim/<name>.yaml`` and ``configs/sched/<name>.yaml``.
"""

from __future__ import annotations

import math
from typing import Annotated, Callable

import torch

from podexp.registry import Items, NonNegativeFloat, PositiveFloat, Range, Registry

OPTIMIZERS = Registry("optim", context=("param_groups", "kernel"), config_group="optim")
SCHEDULES = Registry("sched", context=("steps_per_epoch", "epochs"), config_group="sched")

Factor = Callable[[int], float]
Momentum = Annotated[float, Range(ge=0, lt=1)]  # 1 or more: the velocity never decays and the run diverges
AdamBetas = Annotated[list, Items(float, Range(ge=0, lt=1), length=2)]
Milestones = Annotated[list, Items(int, Range(ge=0), increasing=True)]  # epochs


@OPTIMIZERS.register("sgd")
def sgd(
    param_groups: list,
    kernel: dict,
    *,
    lr: PositiveFloat,
    momentum: Momentum,
    weight_decay: NonNegativeFloat,
    nesterov: bool,
    reset_momentum_at_milestones: bool,
) -> torch.optim.Optimizer:
    """SGD with momentum. ``reset_momentum_at_milestones`` is read by the trainer: the authors' code
    rebuilds its SGD at each lr milestone, dropping the momentum."""
    del reset_momentum_at_milestones
    return torch.optim.SGD(
        param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, **kernel
    )


@OPTIMIZERS.register("adamw")
def adamw(
    param_groups: list,
    kernel: dict,
    *,
    lr: PositiveFloat,
    betas: AdamBetas,
    weight_decay: NonNegativeFloat,
    no_decay_norm_bias_position: bool,
) -> torch.optim.Optimizer:
    """AdamW; fused on CUDA also ``capturable`` (its step count and lr on the device), so that a CUDA graph
    of the training step (``trainer.cuda_graph``) can capture it. ``no_decay_norm_bias_position`` (Swin's
    recipe) is read by ``param_groups``: the network's norm weights, biases and position tables then get no
    weight decay."""
    del no_decay_norm_bias_position
    on_cuda = any(p.is_cuda for group in param_groups for p in group["params"])
    capturable = bool(kernel.get("fused")) and on_cuda
    return torch.optim.AdamW(
        param_groups, lr=lr, betas=tuple(betas), weight_decay=weight_decay, capturable=capturable, **kernel
    )


# parameter names of position tables (Swin: relative position bias, absolute position embedding; ViT's too)
POSITION_TABLES = ("relative_position_bias_table", "absolute_pos_embed", "pos_embed")


def exempt_from_decay(name: str, param: torch.nn.Parameter) -> bool:
    """Whether Swin's recipe leaves ``param`` undecayed: a norm weight or bias (1-D) or a position table."""
    return param.ndim <= 1 or any(table in name for table in POSITION_TABLES)


def param_groups(
    model: torch.nn.Module, loss: torch.nn.Module, lr: float, no_decay_norm_bias_position: bool = False
) -> list[dict]:
    """The backbone/FC1 parameters (split into a decayed group and one with weight decay 0 under
    ``no_decay_norm_bias_position``), then the loss's own groups (which may set lr or weight decay)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if no_decay_norm_bias_position:
        groups = [
            {"params": [p for n, p in named if not exempt_from_decay(n, p)]},
            {"params": [p for n, p in named if exempt_from_decay(n, p)], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": [p for _, p in named]}]
    groups += loss.param_groups(lr)
    return groups


def optimizer_kernel(device: torch.device) -> dict:
    """The implementation flags: fused kernels on CUDA (the non-finite guard hands them its flag as
    ``found_inf``; a CUDA graph can capture them), foreach loops elsewhere."""
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


def build_optimizer(cfg, model, loss, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser ``cfg.name`` over the model's and the loss's parameters (fused kernels on CUDA)."""
    kernel = optimizer_kernel(device)
    options = OPTIMIZERS.resolve(cfg.name, {k: v for k, v in cfg.items() if k != "name"})
    groups = param_groups(model, loss, options["lr"], bool(options.get("no_decay_norm_bias_position")))
    return OPTIMIZERS.build(cfg.name, groups, kernel, **options)


def linear_warmup(factor: Factor, warmup_steps: int) -> Factor:
    """``factor`` after ``warmup_steps`` steps whose multiplier rises linearly to 1."""
    return lambda step: (step + 1) / warmup_steps if step < warmup_steps else factor(step)


@SCHEDULES.register("multistep")
def multistep(
    steps_per_epoch: int, epochs: int, *, milestones: Milestones, gamma: PositiveFloat, warmup_epochs: NonNegativeFloat
) -> Factor:
    """x ``gamma`` at each milestone epoch."""

    def factor(step):
        return gamma ** sum(step // steps_per_epoch >= m for m in milestones)

    return linear_warmup(factor, int(warmup_epochs * steps_per_epoch))


@SCHEDULES.register("cosine")
def cosine(
    steps_per_epoch: int,
    epochs: int,
    *,
    warmup_epochs: NonNegativeFloat,
    min_factor: Annotated[float, Range(ge=0, le=1)],
) -> Factor:
    """Half-cosine decay from 1 after the warm-up to ``min_factor`` at the end of training."""
    warmup_steps = int(warmup_epochs * steps_per_epoch)
    total = max(1, epochs * steps_per_epoch - warmup_steps)

    def factor(step):
        progress = min(1.0, (step - warmup_steps) / total)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return linear_warmup(factor, warmup_steps)


@SCHEDULES.register("constant")
def constant(steps_per_epoch: int, epochs: int, *, warmup_epochs: NonNegativeFloat) -> Factor:
    return linear_warmup(lambda step: 1.0, int(warmup_epochs * steps_per_epoch))


def schedule(cfg, steps_per_epoch: int, epochs: int) -> Factor:
    """The lr multiplier of the schedule ``cfg.name`` as a function of the optimiser step."""
    return SCHEDULES.build(cfg.name, steps_per_epoch, epochs, **{k: v for k, v in cfg.items() if k != "name"})


def lr_factor(cfg, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Multiplier of the base lr after ``step`` optimiser steps (linear warm-up over ``warmup_epochs``, then
    the schedule's decay)."""
    return schedule(cfg, steps_per_epoch, epochs)(step)


def build_scheduler(cfg, optimizer, steps_per_epoch: int, epochs: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(cfg, steps_per_epoch, epochs))
