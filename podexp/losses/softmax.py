"""Softmax cross-entropy on a free linear classifier W z + b (the paper's baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from podexp.fields import LatentDim, NumClasses
from podexp.losses.base import LatentLoss
from podexp.losses.registry import LOSSES


@LOSSES.register("softmax")
class SoftmaxLoss(LatentLoss):
    def __init__(self, num_classes: NumClasses, latent_dim: LatentDim, bias: bool):
        super().__init__(num_classes, latent_dim)
        self.bias = bool(bias)
        self.fc = nn.Linear(latent_dim, num_classes, bias=bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.fc.weight

    def scores(self, z):
        return self.fc(z)

    def compute(self, z, y, objective=0):
        return F.cross_entropy(self.fc(z), y)
