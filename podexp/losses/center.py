"""Center loss (Wen et al., ECCV 2016): softmax + lam * (1/2B) sum_i |z_i - c_{y_i}|^2  (eq. 2 and 5).

The class centres c (K x d) are an ``nn.Parameter`` in their own optimiser group with lr alpha, no
weight decay and no momentum, so they are saved with the loss's state_dict. Each step moves c_j by
alpha * Delta c_j, independent of lam (Wen's Algorithm 1), with ``center_update``:

* ``wen`` (default, Wen's eq. 4): Delta c_j = sum_{i: y_i = j} (c_j - z_i) / (1 + n_j), n_j the
  number of samples of class j in the batch;
* ``batch_mean``: Delta c_j = (1/B) sum_{i: y_i = j} (c_j - z_i), what plain autograd of the centre
  term gives up to lam (a centre then moves about B/n_j times more slowly).

Autograd gives the centres lam * (1/B) sum_{i: y_i = j} (c_j - z_i), so the centres enter the centre
term through a gradient rescaled per class (B / (lam (1 + n_j)) or 1 / lam); the loss's value and its
gradient with respect to z are unchanged. Prediction: argmax W z + b, as for Softmax.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn

from podexp.fields import LatentDim, NumClasses
from podexp.losses.registry import LOSSES
from podexp.losses.softmax import SoftmaxLoss
from podexp.registry import NonNegativeFloat, Range


def scale_gradient(tensor: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """``tensor``'s value with its gradient multiplied by ``factor`` (broadcast against ``tensor``)."""
    detached = tensor.detach()
    return detached + factor * (tensor - detached)


@LOSSES.register("center")
class CenterLoss(SoftmaxLoss):
    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        lam: NonNegativeFloat,
        alpha: Annotated[float, Range(ge=0, le=1)],
        center_update: Literal["wen", "batch_mean"],
        bias: bool,
    ):
        super().__init__(num_classes, latent_dim, bias)
        self.lam = float(lam)
        self.alpha = float(alpha)
        self.center_update = center_update
        self.centres = nn.Parameter(torch.zeros(num_classes, latent_dim))

    def param_groups(self, lr):
        classifier = [{"params": list(self.fc.parameters())}]
        centres = {"params": [self.centres], "lr": self.alpha, "weight_decay": 0.0, "momentum": 0.0}
        return classifier + [centres]

    def centre_gradient_scale(self, y: torch.Tensor) -> torch.Tensor | float:
        """Factor turning autograd's lam/B-weighted centre gradient into Delta c_j (module doc)."""
        if self.center_update == "batch_mean":
            return 1.0 / self.lam
        ones = torch.ones_like(y, dtype=self.centres.dtype)  # bincount would read max(y) on the host (CUDA)
        counts = self.centres.new_zeros(self.num_classes).index_add_(0, y, ones)
        return (y.shape[0] / (self.lam * (1.0 + counts))).unsqueeze(1)

    def centre_term(self, z, y):
        """(1/2B) sum_i |z_i - c_{y_i}|^2, with the centres' gradient rescaled (see module doc)."""
        centres = scale_gradient(self.centres, self.centre_gradient_scale(y))
        return (z - centres[y]).pow(2).sum() / (2 * z.shape[0])

    def compute(self, z, y, objective=0):
        loss = super().compute(z, y, objective)
        if self.lam:
            loss = loss + self.lam * self.centre_term(z, y)
        return loss
