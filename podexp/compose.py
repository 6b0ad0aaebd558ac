"""The composition root: every object a run is made of, built from its composed config.

``build_run(cfg, device)`` is what ``train.py`` trains: data loaders, network, loss, one optimiser and
learning-rate schedule per loss objective, and the trainer's settings. ``build_components`` (loaders,
network, loss) is the part that analysis needs to reload a finished run; the benchmark builds network,
loss and optimisation with the functions below, so all three build a run the same way.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from podexp.data import Loaders, build_loaders
from podexp.losses import build as build_loss
from podexp.losses.base import LatentLoss
from podexp.models import build_model, input_statistics
from podexp.optim import build_optimizer, build_scheduler
from podexp.settings import TrainerSettings

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model_and_loss(cfg: DictConfig, num_classes: int, device: torch.device) -> tuple[nn.Module, LatentLoss]:
    """The network (``cfg.backbone`` -> FC1) and the loss (``cfg.loss``) for ``num_classes`` classes,
    freshly initialised on ``device``; the network in NHWC layout when ``trainer.channels_last``."""
    model = build_model(
        cfg.backbone, in_channels=cfg.dataset.channels, stem=cfg.dataset.stem, latent_dim=cfg.dataset.latent_dim
    )
    loss_params = {k: v for k, v in cfg.loss.items() if k != "name"}
    loss = build_loss(cfg.loss.name, num_classes=num_classes, latent_dim=cfg.dataset.latent_dim, **loss_params)
    model.to(device)
    loss.to(device)
    if cfg.trainer.channels_last:  # NHWC convolutions: faster on GPUs and CPUs alike
        model.to(memory_format=torch.channels_last)
    return model, loss


def loader_config(cfg: DictConfig) -> DictConfig:
    """``cfg.dataset``, with the input mean/std of the backbone's pre-trained weights in place of the
    dataset's when it loads some (ViT/Swin: timm's ``pretrained_cfg``); for a grey-scale dataset the
    per-channel statistics are averaged."""
    stats = input_statistics(cfg.backbone)
    if stats is None:
        return cfg.dataset
    channels = int(cfg.dataset.channels)
    mean, std = stats
    if len(mean) != channels:
        mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    log.info("Inputs normalised with the pre-trained weights' mean %s and std %s (not dataset.mean/std).", mean, std)
    return OmegaConf.merge(cfg.dataset, {"mean": mean, "std": std})


def build_components(cfg: DictConfig, device: torch.device, rank: int = 0, world_size: int = 1):
    """(loaders, model, loss) for ``cfg``, on ``device``; model and loss are freshly initialised.

    ``rank``/``world_size`` (torchrun) give this process its shard of every batch.
    """
    loaders = build_loaders(
        loader_config(cfg),
        seed=cfg.seed,
        device=device,
        channels_last=bool(cfg.trainer.channels_last),
        rank=rank,
        world_size=world_size,
    )
    model, loss = build_model_and_loss(cfg, loaders.num_classes, device)
    return loaders, model, loss


def build_optimization(
    cfg: DictConfig, model: nn.Module, loss: LatentLoss, steps_per_epoch: int, device: torch.device
) -> tuple[list, list]:
    """(optimisers, schedules): one ``cfg.optim`` optimiser over the network's and the loss's parameters
    and one per-step ``cfg.sched`` schedule for each of the loss's objectives (COT alternates two)."""
    optimizers = [build_optimizer(cfg.optim, model, loss, device) for _ in range(loss.num_objectives)]
    epochs = int(cfg.trainer.epochs)
    schedulers = [build_scheduler(cfg.sched, opt, steps_per_epoch, epochs) for opt in optimizers]
    return optimizers, schedulers


def momentum_reset_epochs(cfg: DictConfig) -> frozenset[int]:
    """The epochs at whose start the authors' code rebuilt its SGD (dropping the momentum): the lr
    milestones when ``optim.reset_momentum_at_milestones``, else none."""
    if not cfg.optim.get("reset_momentum_at_milestones"):
        return frozenset()
    return frozenset(cfg.sched.get("milestones", []))


@dataclass
class Run:
    """Everything a ``Trainer`` is made of, freshly initialised (the model not yet wrapped for DDP or
    ``torch.compile``: ``podexp.train.distributed.prepare_model`` does that)."""

    loaders: Loaders
    model: nn.Module
    loss: LatentLoss
    optimizers: list
    schedulers: list
    settings: TrainerSettings
    momentum_reset_epochs: frozenset[int]


def build_run(cfg: DictConfig, device: torch.device, rank: int = 0, world_size: int = 1) -> Run:
    """Seed every random generator with ``cfg.seed``, then build the run ``cfg`` describes on ``device``."""
    seed_everything(cfg.seed)
    loaders, model, loss = build_components(cfg, device, rank, world_size)
    optimizers, schedulers = build_optimization(cfg, model, loss, len(loaders.train), device)
    return Run(
        loaders,
        model,
        loss,
        optimizers,
        schedulers,
        TrainerSettings.from_config(cfg.trainer),
        momentum_reset_epochs(cfg),
    )
