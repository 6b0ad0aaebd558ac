"""ViT-B/16 and Swin-B from timm, ending in the pooled feature (``num_classes=0``).

Inputs of any size are resized (bilinear) to the model's ``img_size`` (224) inside the wrapper, as the
paper does for every dataset it runs on transformers. Pre-trained weights (docs/method.md §5:
ImageNet-21k for ViT, the Swin release) come from ``backbone.checkpoint=PATH`` (a file timm can load:
.safetensors / .pth / .bin) or, with ``backbone.pretrained=true``, from the Hugging Face hub cache;
``pretrained=false`` gives a random init. ``model_kwargs`` are passed to ``timm.create_model`` (tests
use them to build reduced-size variants through the same code path); ``drop_path_rate`` is the stochastic
depth of the Swin recipe.

Pre-trained weights expect the inputs normalised with the statistics they were trained with, not the
dataset's: ``pretrained_statistics`` reads them from timm's ``pretrained_cfg`` (0.5/0.5 for the ViT-B/16
ImageNet-21k releases, the ImageNet mean/std for Swin), and the composition root gives them to the loaders
whenever such weights are loaded (``podexp.models.input_statistics``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from podexp.errors import ConfigError
from podexp.fields import Channels, Stem
from podexp.models.backbones import BACKBONES
from podexp.registry import PositiveInt, Range


class ResizeTo(nn.Module):
    """Bilinear resize of the batch to ``size`` x ``size`` (a no-op when it already is), then ``net``."""

    def __init__(self, net: nn.Module, size: int):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.size, self.size):
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.net(images)


def _weights_url(model: str) -> str:
    import timm

    cfg = timm.models.get_pretrained_cfg(model)
    hub_id = cfg.hf_hub_id if cfg is not None else None
    return f"https://huggingface.co/{hub_id}/resolve/main/model.safetensors" if hub_id else f"timm's {model}"


class _MissingKeys(logging.Handler):
    """Collects timm's report of model weights that a pre-trained file did not provide.

    timm loads pre-trained weights non-strictly when the classifier is dropped (``num_classes=0``)
    and only logs the missing keys; a wrong file would silently leave a random init.
    """

    def __init__(self):
        super().__init__(logging.INFO)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Missing keys"):
            self.reports.append(record.getMessage())


@contextmanager
def _missing_key_reports():
    logger = logging.getLogger("timm.models._builder")
    handler, level = _MissingKeys(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.reports
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def pretrained_statistics(model: str) -> tuple[list[float], list[float]] | None:
    """(mean, std) per RGB channel from timm's ``pretrained_cfg`` of ``model`` (metadata only: nothing is
    downloaded); None when timm has no such record."""
    import timm

    cfg = timm.models.get_pretrained_cfg(model)
    if cfg is None or cfg.mean is None or cfg.std is None:
        return None
    return [float(m) for m in cfg.mean], [float(s) for s in cfg.std]


def create_timm_backbone(
    model: str,
    in_channels: int,
    *,
    img_size: int,
    pretrained: bool,
    checkpoint: str | None,
    model_kwargs: dict | None,
    drop_path_rate: float = 0.0,
) -> tuple[nn.Module, int]:
    import timm
    from omegaconf import OmegaConf

    if OmegaConf.is_config(model_kwargs):
        model_kwargs = OmegaConf.to_container(model_kwargs)
    kwargs = dict(
        num_classes=0, in_chans=in_channels, img_size=img_size, drop_path_rate=drop_path_rate, **(model_kwargs or {})
    )
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"backbone.checkpoint={checkpoint}: no such file. Download the weights of "
                f"{model} ({_weights_url(model)}) to that path, or set "
                f"backbone.checkpoint=null backbone.pretrained=false for a random init."
            )
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        source = f"the file {path}"
    elif not pretrained:
        net = timm.create_model(model, pretrained=False, **kwargs)
        return ResizeTo(net, img_size), net.num_features
    else:
        source = "the Hugging Face hub cache"
    try:
        with _missing_key_reports() as reports:
            net = timm.create_model(model, pretrained=True, **kwargs)
        if reports:
            raise ValueError(reports[0][:300])
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        first_line = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(
            f"Could not load the pre-trained weights of {model} from {source} "
            f"({err.__class__.__name__}: {first_line}). Download {_weights_url(model)} "
            f"(offline: set HF_HUB_OFFLINE=1 to fail fast) and pass backbone.checkpoint=PATH, "
            f"or fill the Hugging Face cache on a connected machine; "
            f"backbone.pretrained=false trains from a random init."
        ) from None
    return ResizeTo(net, img_size), net.num_features


def _register_timm(name: str, summary: str) -> None:
    """Register ``name`` as a timm transformer backbone (``backbone.model`` names the timm model)."""

    def build(
        in_channels: Channels,
        stem: Stem,
        model: str,
        img_size: PositiveInt,
        pretrained: bool,
        checkpoint: str | None,
        model_kwargs: dict | None,
        drop_path_rate: Annotated[float, Range(ge=0, lt=1)],
    ) -> tuple[nn.Module, int]:
        return create_timm_backbone(
            model,
            in_channels,
            img_size=img_size,
            pretrained=pretrained,
            checkpoint=checkpoint,
            model_kwargs=model_kwargs,
            drop_path_rate=drop_path_rate,
        )

    build.__name__, build.__doc__ = name, summary
    BACKBONES.register(name, timm=True)(build)


_register_timm("vit_b16", "ViT-B/16 (86M parameters, 768-d feature: the class token after the final norm).")
_register_timm("swin_b", "Swin-B, window 7 (87M parameters, 1024-d feature: global average of the last stage).")
