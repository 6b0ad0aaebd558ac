"""Negative-focused weights-biased softmax, W-Softmax (Li & Wang; seeds/003).

Normalised class weights w_hat_j, unnormalised z, no bias. The target logit is w_hat_y . z; each
non-target j uses the weight biased towards the target, normalise(w_hat_j + alpha w_hat_y):
logit_j = (w_hat_j . z + alpha w_hat_y . z) / sqrt(1 + alpha^2 + 2 alpha w_hat_j . w_hat_y).
alpha = 0 is cross-entropy on w_hat . z; a larger alpha widens the decision margin.
Prediction: argmax_j w_hat_j . z.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from podexp.fields import LatentDim, NumClasses
from podexp.losses.base import LatentLoss, target_mask
from podexp.losses.margin import MIN_SINE_SQUARED
from podexp.losses.registry import LOSSES
from podexp.registry import NonNegativeFloat


@LOSSES.register("wsoftmax")
class WSoftmaxLoss(LatentLoss):
    def __init__(self, num_classes: NumClasses, latent_dim: LatentDim, alpha: NonNegativeFloat):
        super().__init__(num_classes, latent_dim)
        self.alpha = float(alpha)
        self.weight = nn.Parameter(torch.empty(num_classes, latent_dim))
        nn.init.xavier_uniform_(self.weight)

    def scores(self, z):
        return z @ F.normalize(self.weight, dim=1).T

    def compute(self, z, y, objective=0):
        w_hat = F.normalize(self.weight, dim=1)
        projections = z @ w_hat.T  # w_hat_j . z
        target = projections.gather(1, y[:, None])  # w_hat_y . z
        weight_cos = (w_hat[y] @ w_hat.T).clamp(-1.0, 1.0)  # w_hat_y . w_hat_j
        biased_norm = (1 + self.alpha**2 + 2 * self.alpha * weight_cos).clamp_min(MIN_SINE_SQUARED).sqrt()
        biased = (projections + self.alpha * target) / biased_norm
        is_target = target_mask(projections, y)
        return F.cross_entropy(torch.where(is_target, projections, biased), y)
