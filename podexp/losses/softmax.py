"""Softmax cross-entropy on a free linear classifier W z + b (the paper's baseline)."""
import torch
import torch.nn.functional as F
from torch import nn

from podexp.losses.base import LatentLoss
from podexp.losses.registry import register


@register("softmax")
class SoftmaxLoss(LatentLoss):
    def __init__(self, num_classes: int, latent_dim: int, bias: bool = True):
        super().__init__(num_classes, latent_dim)
        self.fc = nn.Linear(latent_dim, num_classes, bias=bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.fc.weight

    def scores(self, z):
        return self.fc(z)

    def compute(self, z, y, objective=0):
        return F.cross_entropy(self.fc(z), y)
