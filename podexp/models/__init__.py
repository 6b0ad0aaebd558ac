"""Backbone + latent head: image -> pooled feature -> FC1 -> latent z (docs/method.md §2)."""

from __future__ import annotations

from torch import nn

from podexp.fields import LatentDim
from podexp.models import cnns, transformers  # noqa: F401  (register their backbones)
from podexp.models.backbones import BACKBONES
from podexp.registry import argument_problems, raise_problems


class LatentNet(nn.Module):
    """backbone -> global pooling (inside the backbone) -> FC1 = Linear(C -> d, bias) -> z.

    No BatchNorm and no ReLU after FC1: z is the raw latent feature every loss sees.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, latent_dim: LatentDim):
        super().__init__()
        self.backbone = backbone
        self.fc1 = nn.Linear(feature_dim, latent_dim)

    def forward(self, images):
        return self.fc1(self.backbone(images))


def build_model(backbone_cfg, *, in_channels: int, stem: str, latent_dim: int) -> LatentNet:
    """The backbone ``backbone_cfg.name`` (its other keys override configs/backbone/<name>.yaml) + FC1.

    ``stem`` is the dataset's; a ``backbone.stem`` that is not null replaces it."""
    raise_problems("Cannot build the model:", argument_problems(LatentNet, latent_dim=latent_dim))
    options = {k: v for k, v in backbone_cfg.items() if k != "name"}
    stem = options.pop("stem", None) or stem
    backbone, feature_dim = BACKBONES.build(backbone_cfg.name, in_channels, stem, **options)
    return LatentNet(backbone, feature_dim, latent_dim)


def input_statistics(backbone_cfg) -> tuple[list[float], list[float]] | None:
    """The per-channel (mean, std) the backbone's pre-trained weights expect (timm's ``pretrained_cfg``),
    when ``backbone_cfg`` loads such weights; None when the dataset's own statistics apply."""
    name = backbone_cfg.name
    if not BACKBONES.attributes(name).get("timm"):
        return None
    options = {**BACKBONES.defaults(name), **{k: v for k, v in backbone_cfg.items() if k != "name"}}
    if not (options.get("pretrained") or options.get("checkpoint")):
        return None
    return transformers.pretrained_statistics(options["model"])


__all__ = ["BACKBONES", "LatentNet", "build_model", "input_statistics"]
