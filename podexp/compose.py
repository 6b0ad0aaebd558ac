"""The composition root: every object a run is made of, built from its composed config.

``build_run(cfg, device)`` is what ``train.py`` trains: data loaders, network, loss, one optimiser and
learning-rate schedule per loss objective, and the trainer's settings. ``build_components`` (loaders,
network, loss) is the part that analysis needs to reload a finished run; the benchmark builds network,
loss and optimisation with the functions below, so all three build a run the same way. ``load_model``
rebuilds a finished run's network and loss from its ``model.pt`` alone (README, "Evaluate a checkpoint").
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from podexp.data import Loaders, build_loaders
from podexp.errors import PodexpError
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


# -- a trained network back from its files ---------------------------------------------------------
MODEL_FILE = "model.pt"  # a finished run's weights: network (backbone + FC1) and loss (classifier / PEDCC)
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP and torch.compile wrap a network and prefix its keys


def model_file_state(resolved: dict, model: nn.Module, loss: LatentLoss) -> dict:
    """What ``model.pt`` holds: the resolved config, the class count and the weights of ``model`` (not
    wrapped for DDP / torch.compile) and ``loss``; no optimiser or trainer state (``last.pt`` has those)."""
    return {
        "config": resolved,
        "num_classes": loss.num_classes,
        "model": model.state_dict(),
        "loss": loss.state_dict(),
    }


def unwrapped_keys(weights: dict) -> dict:
    """``weights`` with the key prefixes of DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) removed,
    so a checkpoint saved from a wrapped network loads into a plain one."""
    out = {}
    for key, value in weights.items():
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def read_weights(path) -> dict:
    """The checkpoint at ``path`` (``model.pt`` or ``last.pt``, loaded onto the CPU whatever device wrote it)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # missing, truncated zip, pickle garbage, ...
        reason = str(err).split(". ")[0].rstrip(".")  # torch adds advice about torch.save after the cause
        raise PodexpError(
            f"Cannot read the checkpoint {path} ({err.__class__.__name__}: {reason}). Point at a run's "
            f"{MODEL_FILE} or last.pt (a file written by podexp, copied whole)."
        ) from err
    if not isinstance(state, dict) or not {"model", "loss"} <= state.keys():
        raise PodexpError(
            f"{path} is not a podexp checkpoint: it lacks the 'model' and 'loss' weights. Point at a run's "
            f"{MODEL_FILE} or last.pt."
        )
    return state


def load_weights(model: nn.Module, loss: LatentLoss, state: dict, source) -> None:
    """Load the network's and the loss's weights of ``state`` (read from ``source``), wrapper prefixes
    removed; a network of another shape is a user error (e.g. a dataset with another class count)."""
    try:
        model.load_state_dict(unwrapped_keys(state["model"]))
        loss.load_state_dict(unwrapped_keys(state["loss"]))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip().rstrip(".")
        raise PodexpError(
            f"The weights in {source} do not fit the network built from the config ({first}). Evaluate with "
            f"the run's own backbone and loss, on data shaped as it was trained on (channels, class count)."
        ) from err
    model.eval()
    loss.eval()


def load_model(path, device: str | torch.device = "cpu") -> tuple[nn.Module, LatentLoss]:
    """(network, loss) of a run's ``model.pt`` (or ``last.pt``) in eval mode on ``device``:
    ``z = model(images)`` is the latent feature, ``loss.predict(z).argmax(1)`` the class. The network is
    rebuilt from the config stored in the file, so no data is read."""
    state = read_weights(path)
    if not state.get("config"):
        raise PodexpError(f"{path} holds no config to rebuild the network from; use a run's {MODEL_FILE}.")
    cfg = OmegaConf.create(state["config"])
    num_classes = state.get("num_classes") or cfg.dataset.num_classes
    model, loss = build_model_and_loss(cfg, int(num_classes), torch.device("cpu"))
    load_weights(model, loss, state, path)
    return model.to(device), loss.to(device)


def run_weights_file(run_dir) -> Path:
    """The checkpoint to read a run folder's trained network from: ``model.pt`` (written when the run
    finished), else ``last.pt`` (a run still going, or one trained before model.pt existed)."""
    run_dir = Path(run_dir)
    for name in (MODEL_FILE, "last.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise PodexpError(
        f"{run_dir} holds no checkpoint ({MODEL_FILE} or last.pt). Give the folder of a run trained by podexp "
        f"(outputs/runs/<name>/<time> or a sweep's job folder); a run with trainer.checkpoint=false has "
        f"{MODEL_FILE} only once it has finished."
    )
