"""Quantities several parts share, each with its valid values, written once.

A dataset declares them as fields (``dataset.num_classes``), and losses, backbones and the PEDCC take
them as the context they are built with, so ``dataset.num_classes=1`` in a config and
``build("pod", num_classes=1, latent_dim=8)`` in Python are refused by the same rule.
"""

from __future__ import annotations

from typing import Annotated, Literal

from podexp.registry import PositiveInt, Range

NumClasses = Annotated[int, Range(ge=2)]  # K: a classifier needs two classes at least
LatentDim = PositiveInt  # d: the width of FC1's output z
Channels = PositiveInt  # image channels (1: grey, 3: colour)
# the first layers of a CNN, by input size (docs/method.md §5): cifar 32 px, tiny 64 px, imagenet 224 px
Stem = Literal["cifar", "tiny", "imagenet"]
# dataset.val_fraction: the share of each class's training images held out for validation (0: none)
ValFraction = Annotated[float, Range(ge=0, lt=1)]
