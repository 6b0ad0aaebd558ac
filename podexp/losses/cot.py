"""Complement Objective Training (Chen et al., ICLR 2019) on a free linear classifier W z + b.

Two objectives per batch, each with its own optimiser (the trainer does one step per objective):

0. cross-entropy on W z + b;
1. minus the complement entropy (paper eq. 3-4): with the complement distribution
   q_ij = softmax over the non-target logits (q_{i,y_i} = 0),
   loss = (1/B) sum_i sum_{j != y_i} q_ij log q_ij / norm,  norm = K - 1 (paper, "normalised
   complement entropy") or K (the authors' code); minimising it flattens the non-target probabilities.
Prediction: argmax W z + b.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from podexp.fields import LatentDim, NumClasses
from podexp.losses.base import target_mask
from podexp.losses.registry import LOSSES
from podexp.losses.softmax import SoftmaxLoss

# K-1: the paper (normalised complement entropy); K: the authors' code
Normalisation = Literal["k_minus_1", "k"]


def complement_log_distribution(logits: torch.Tensor, y: torch.Tensor):
    """(q, log q) of the softmax over the non-target logits; both exactly 0 at the target entry."""
    is_target = target_mask(logits, y)
    log_q = F.log_softmax(logits.masked_fill(is_target, float("-inf")), dim=1).masked_fill(is_target, 0.0)
    q = log_q.exp().masked_fill(is_target, 0.0)
    return q, log_q


@LOSSES.register("cot")
class COTLoss(SoftmaxLoss):
    num_objectives = 2

    def __init__(self, num_classes: NumClasses, latent_dim: LatentDim, normalise: Normalisation, bias: bool):
        super().__init__(num_classes, latent_dim, bias)
        self.normalise = normalise

    def negative_complement_entropy(self, logits, y):
        q, log_q = complement_log_distribution(logits, y)
        norm = self.num_classes - 1 if self.normalise == "k_minus_1" else self.num_classes
        return (q * log_q).sum(1).mean() / norm

    def compute(self, z, y, objective=0):
        if objective == 0:
            return super().compute(z, y)
        return self.negative_complement_entropy(self.fc(z), y)
