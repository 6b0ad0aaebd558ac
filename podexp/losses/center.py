"""Center loss (Wen et al., ECCV 2016): softmax + lam * (1/2B) sum_i |z_i - c_{y_i}|^2  (eq. 2 and 5).

The class centres c (K x d) are an ``nn.Parameter`` in their own optimiser group with lr alpha, no
weight decay and no momentum, so they are saved with the loss's state_dict. Wen's update
(Algorithm 1) moves a centre by alpha * Delta c_j, independent of lam; autograd would give the centres
lam * Delta c_j, so the centres enter the centre term through a gradient scaled by 1/lam (the loss's
value is unchanged): each step moves c_j by alpha * (1/B) sum_{i: y_i = j} (c_j - z_i).
Prediction: argmax W z + b, as for Softmax.
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from podexp.fields import LatentDim, NumClasses
from podexp.losses.registry import LOSSES
from podexp.losses.softmax import SoftmaxLoss
from podexp.registry import NonNegativeFloat, Range


def scale_gradient(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    """``tensor``'s value with its gradient multiplied by ``factor``."""
    detached = tensor.detach()
    return detached + factor * (tensor - detached)


@LOSSES.register("center")
class CenterLoss(SoftmaxLoss):
    def __init__(self, num_classes: NumClasses, latent_dim: LatentDim, lam: NonNegativeFloat,
                 alpha: Annotated[float, Range(ge=0, le=1)], bias: bool):
        super().__init__(num_classes, latent_dim, bias)
        self.lam = float(lam)
        self.alpha = float(alpha)
        self.centres = nn.Parameter(torch.zeros(num_classes, latent_dim))

    def param_groups(self, lr):
        classifier = [{"params": list(self.fc.parameters())}]
        centres = {"params": [self.centres], "lr": self.alpha, "weight_decay": 0.0, "momentum": 0.0}
        return classifier + [centres]

    def centre_term(self, z, y):
        """(1/2B) sum_i |z_i - c_{y_i}|^2, with the centres' gradient scaled by 1/lam (see module doc)."""
        centres = scale_gradient(self.centres, 1.0 / self.lam)
        return (z - centres[y]).pow(2).sum() / (2 * z.shape[0])

    def compute(self, z, y, objective=0):
        loss = super().compute(z, y, objective)
        if self.lam:
            loss = loss + self.lam * self.centre_term(z, y)
        return loss
