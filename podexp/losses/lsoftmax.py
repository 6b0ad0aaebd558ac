"""Large-Margin Softmax (Liu et al., ICML 2016; seeds/004), eq. 5-7 and the lambda annealing.

Logits W z (no bias); the target logit |W_y| |z| psi(theta_y) with
psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m], k in {0..m-1}; cos(m theta) is
the Chebyshev polynomial T_m(cos theta) = sum_n (-1)^n C(m, 2n) cos^(m-2n) theta (1 - cos^2 theta)^n
(eq. 7), and k is a detached integer. To ease optimisation the target is annealed (the authors' code):
f_y = (lam W_y.z + |W_y| |z| psi(theta_y)) / (1 + lam),
lam = max(lam_min, base * (1 + gamma * step)^(-power)), step = the trainer's global step (a buffer,
so it is saved in checkpoints). Prediction: argmax W z.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from podexp.fields import LatentDim, NumClasses
from podexp.losses.base import LatentLoss
from podexp.losses.margin import clamp_cosine, replace_target
from podexp.losses.registry import LOSSES
from podexp.registry import NonNegativeFloat, Range


def cos_multiple_angle(cos: torch.Tensor, m: int) -> torch.Tensor:
    """cos(m theta) as the polynomial T_m(cos theta) (L-Softmax eq. 7)."""
    sin_sq = 1.0 - cos.pow(2)
    return sum((-1) ** n * math.comb(m, 2 * n) * cos.pow(m - 2 * n) * sin_sq.pow(n) for n in range(m // 2 + 1))


def psi(cos: torch.Tensor, m: int) -> torch.Tensor:
    """psi(theta) = (-1)^k cos(m theta) - 2k with k = floor(m theta / pi) (detached)."""
    with torch.no_grad():
        k = torch.floor(m * torch.acos(cos) / math.pi).clamp(0, m - 1)
    sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * cos_multiple_angle(cos, m) - 2.0 * k


@LOSSES.register("lsoftmax")
class LSoftmaxLoss(LatentLoss):
    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        margin: Annotated[int, Range(ge=1)],
        base: NonNegativeFloat,
        gamma: NonNegativeFloat,
        power: NonNegativeFloat,
        lambda_min: NonNegativeFloat,
    ):
        super().__init__(num_classes, latent_dim)
        self.margin = int(margin)
        self.base, self.gamma, self.power, self.lambda_min = float(base), float(gamma), float(power), float(lambda_min)
        self.weight = nn.Parameter(torch.empty(num_classes, latent_dim))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Linear
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def lam(self) -> torch.Tensor:
        """max(lam_min, base (1 + gamma step)^(-power)) as a tensor on the loss's device (no host sync)."""
        annealed = self.base * (1.0 + self.gamma * self.step.double()).pow(-self.power)
        return annealed.clamp_min(self.lambda_min).float()

    def on_step(self, global_step):
        self.step.fill_(global_step)

    def scores(self, z):
        return z @ self.weight.T

    def compute(self, z, y, objective=0):
        logits = z @ self.weight.T
        w_norm = self.weight.norm(dim=1)[y]
        z_norm = z.norm(dim=1)
        plain = logits.gather(1, y[:, None]).squeeze(1)
        cos = clamp_cosine(plain / (w_norm * z_norm).clamp_min(1e-12))
        lam = self.lam()
        target = (lam * plain + w_norm * z_norm * psi(cos, self.margin)) / (1.0 + lam)
        return F.cross_entropy(replace_target(logits, y, target), y)

    def state_metrics(self):
        return {"lambda": float(self.lam())}
