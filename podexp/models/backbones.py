"""Backbones: image -> pooled feature vector. Each builder returns (module, feature_dim).

``stem`` adapts the first layers to the input size (docs/method.md §5):
``cifar`` (32 px: 3x3 stride-1 first conv, no max-pool), ``tiny`` (64 px: 3x3 stride-1 conv, keep the
max-pool) and ``imagenet`` (224 px: the standard stem). The stem is the dataset's (``dataset.stem``) unless
``backbone.stem`` names one: ``backbone=mobilenetv2 backbone.stem=imagenet`` runs the unadapted network
on 32/64-px images (docs/reproduce.md, Table 7).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from podexp.fields import Channels, Stem
from podexp.registry import PositiveInt, Registry


@dataclass(frozen=True)
class BackboneFields:
    """The keys every backbone config may hold; ``build_model`` reads them."""

    stem: Stem | None  # null: the dataset's stem (dataset.stem)


# builder(in_channels, stem, **options) -> (module, feature_dim); options default to configs/backbone/<name>.yaml
BACKBONES = Registry("backbone", context=("in_channels", "stem"), config_group="backbone", shared=BackboneFields)


@BACKBONES.register("small_cnn")
def small_cnn(in_channels: Channels, stem: Stem, width: PositiveInt) -> tuple[nn.Module, int]:
    """Three conv-BN-ReLU blocks and global average pooling: trains on a CPU in seconds."""

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    layers = [
        *block(in_channels, width),
        *block(width, 2 * width),
        nn.MaxPool2d(2),
        *block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers), 4 * width


@BACKBONES.register("resnet50")
def resnet50(in_channels: Channels, stem: Stem) -> tuple[nn.Module, int]:
    """torchvision's ResNet-50 (random init) with the stem of docs/method.md §5 and no fc."""
    import torchvision

    net = torchvision.models.resnet50(weights=None)
    if stem in ("cifar", "tiny") or in_channels != 3:
        kernel, stride, padding = (3, 1, 1) if stem != "imagenet" else (7, 2, 3)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel, stride, padding, bias=False)
    if stem == "cifar":
        net.maxpool = nn.Identity()
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, feature_dim
