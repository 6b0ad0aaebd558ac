"""DenseNet-121 and MobileNetV2 (torchvision, random init) with input-size stems, ending in a pooled feature.

The stems mirror ResNet-50's (docs/method.md §5), so every CNN ends on a 4x4 map for 32/64-px data:

* ``cifar`` (32 px): stride-1 3x3 first conv and no early down-sampling (DenseNet: no max-pool;
  MobileNetV2: the first stride-2 inverted-residual block runs at stride 1) -> total stride 8;
* ``tiny`` (64 px): stride-1 3x3 first conv, the rest standard -> total stride 16;
* ``imagenet`` (224 px): the standard network -> total stride 32.
"""

from __future__ import annotations

from torch import nn

from podexp.fields import Channels, Stem
from podexp.models.backbones import BACKBONES


@BACKBONES.register("densenet121")
def densenet121(in_channels: Channels, stem: Stem) -> tuple[nn.Module, int]:
    import torchvision

    net = torchvision.models.densenet121(weights=None)
    features = net.features
    if stem != "imagenet" or in_channels != 3:
        kernel, stride, padding = (7, 2, 3) if stem == "imagenet" else (3, 1, 1)
        features.conv0 = nn.Conv2d(in_channels, features.conv0.out_channels, kernel, stride, padding, bias=False)
    if stem == "cifar":
        features.pool0 = nn.Identity()
    # torchvision's forward applies ReLU after the last norm, then pools: keep that order
    body = nn.Sequential(features, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return body, net.classifier.in_features


@BACKBONES.register("mobilenetv2")
def mobilenetv2(in_channels: Channels, stem: Stem) -> tuple[nn.Module, int]:
    import torchvision

    net = torchvision.models.mobilenet_v2(weights=None)
    features = net.features
    first = features[0][0]
    if stem != "imagenet" or in_channels != 3:
        stride = 2 if stem == "imagenet" else 1
        features[0][0] = nn.Conv2d(in_channels, first.out_channels, 3, stride, 1, bias=False)
    if stem == "cifar":
        features[2].conv[1][0].stride = (1, 1)  # the depthwise conv of the first stride-2 block
    body = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return body, net.last_channel
