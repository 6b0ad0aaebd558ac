"""What a run is, in a few lines of its log at the start: the composed choices and the values that size it."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from podexp.train.distributed import unwrap


def hydra_choices() -> dict[str, str]:
    """The config group choices Hydra composed (``{"dataset": "cifar10", "loss": "pod", ...}``; ``{}`` outside
    Hydra). Hydra's own groups (``hydra/...``) are left out."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choices = HydraConfig.get().runtime.choices
    except (ImportError, ValueError):
        return {}
    return {k: str(v) for k, v in choices.items() if v is not None and not k.startswith("hydra")}


def hydra_overrides() -> list[str]:
    """The job's command-line overrides (a sweep job's include its swept values; ``[]`` outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return []


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe_run(cfg: DictConfig, run, device: torch.device, world_size: int = 1) -> str:
    """The run's header: choices, dataset sizes and classes, d, the backbone's parameter count, device,
    precision, batch and steps per epoch."""
    choices = hydra_choices() or {g: cfg[g].name for g in ("dataset", "backbone", "loss") if "name" in cfg[g]}
    sizes = " / ".join(f"{n:,} {split}" for split, n in run.loaders.sizes().items())
    model = unwrap(run.model)
    backbone = getattr(model, "backbone", model)
    precision = "bf16 autocast" if device.type == "cuda" and run.settings.amp else "fp32"
    lines = [
        "run: " + " ".join(f"{k}={v}" for k, v in sorted(choices.items())),
        f"  data: {sizes} images, {run.loaders.num_classes} classes, latent d={cfg.dataset.latent_dim}",
        f"  network: {cfg.backbone.name} backbone {parameter_count(backbone):,} parameters "
        f"({parameter_count(model):,} with FC1)",
        f"  device {device} x{world_size}, {precision}, batch {cfg.dataset.batch_size}, "
        f"{len(run.loaders.train):,} steps/epoch, {run.settings.epochs} epochs, seed {cfg.seed}",
    ]
    return "\n".join(lines)
