"""Additive/multiplicative angular-margin softmax losses on a normalised-cosine classifier.

All three learn a free K x d weight W and compute cos theta_j = w_j/|w_j| . z/|z| (no bias). In
training the target column gets a margin and every column is scaled by s; ``predict`` returns the
margin-free cosines (docs/method.md §4).

* ``am_softmax`` (CosFace / AM-Softmax, Wang et al. 2018, eq. 4): target s * (cos theta_y - m).
* ``arcface`` (Deng et al. 2019, eq. 3): target s * cos(theta_y + m); where theta_y + m would pass pi
  (theta_y > pi - m) the target becomes s * (cos theta_y - m sin m) so the logit keeps decreasing in
  theta; ``easy_margin`` instead applies the margin only where cos theta_y > 0.
* ``cm`` (combined margin, ArcFace paper eq. 4): target s * (cos(m1 theta_y + m2) - m3), all three
  margins at once. Past theta_b = (pi - m2)/m1 the cosine rises again with theta_y, so the loss would
  reward pushing z *away* from its class (on the digits demo, accuracy fell to 1%); with
  ``monotonic_fallback`` (default) the target there is cos theta_y - (cos theta_b + 1 + m3), which is
  continuous at theta_b and decreasing: the role ArcFace's fallback plays for m1 = 1, m3 = 0.
  ``easy_margin`` (as ArcFace's) applies the margins only where cos theta_y > 0.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from podexp.fields import LatentDim, NumClasses
from podexp.losses.base import LatentLoss, target_mask
from podexp.losses.registry import LOSSES
from podexp.registry import PositiveFloat, Range

# a margin subtracted from a cosine (in [-1, 1]): 2 or more puts the target below every other class for good
CosineMargin = Annotated[float, Range(ge=0, lt=2)]
# a margin added to an angle (in [0, pi]): pi or more turns the target cosine back up
AngleMargin = Annotated[float, Range(ge=0, lt=3.1416)]

MIN_SINE_SQUARED = 1e-7
MAX_ABS_COSINE = math.sqrt(1.0 - MIN_SINE_SQUARED)


def clamp_cosine(cos: torch.Tensor) -> torch.Tensor:
    """Cosines kept where 1 - cos^2 >= 1e-7, so sqrt(1 - cos^2) and acos have finite gradients."""
    return cos.clamp(-MAX_ABS_COSINE, MAX_ABS_COSINE)


def sine_of(cos: torch.Tensor) -> torch.Tensor:
    """sin theta = sqrt(1 - cos^2 theta) for theta in [0, pi], with 1 - cos^2 clamped to >= 1e-7."""
    return (1.0 - cos.pow(2)).clamp_min(MIN_SINE_SQUARED).sqrt()


def replace_target(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits`` with column y_i of row i replaced by ``target[i]`` (out of place)."""
    is_target = target_mask(logits, y)
    return torch.where(is_target, target.unsqueeze(1), logits)


def am_softmax_cross_entropy(cos: torch.Tensor, y: torch.Tensor, scale: float, margin: float):
    """CE over s * cos theta_j with the target column s * (cos theta_y - m) (AM-Softmax eq. 4)."""
    target = cos.gather(1, y[:, None]).squeeze(1) - margin
    return F.cross_entropy(scale * replace_target(cos, y, target), y)


class CosineClassifierLoss(LatentLoss):
    """Base of the margin losses: a learnt K x d weight, logits s * cos, a margin on the target."""

    def __init__(self, num_classes, latent_dim, scale):
        super().__init__(num_classes, latent_dim)
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(num_classes, latent_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosines(self, z):
        return (F.normalize(z, dim=1) @ F.normalize(self.weight, dim=1).T).clamp(-1.0, 1.0)

    def scores(self, z):
        return self.cosines(z)

    def target_logit(self, cos_target: torch.Tensor) -> torch.Tensor:
        """The margin-adjusted target cosine (before scaling by s)."""
        raise NotImplementedError

    def compute(self, z, y, objective=0):
        cos = self.cosines(z)
        target = self.target_logit(cos.gather(1, y[:, None]).squeeze(1))
        return F.cross_entropy(self.scale * replace_target(cos, y, target), y)

    def extra_repr(self):
        return f"{super().extra_repr()}, scale={self.scale}"


@LOSSES.register("am_softmax")
class AMSoftmaxLoss(CosineClassifierLoss):
    """AM-Softmax / CosFace: target s * (cos theta_y - m)."""

    def __init__(self, num_classes: NumClasses, latent_dim: LatentDim, scale: PositiveFloat, margin: CosineMargin):
        super().__init__(num_classes, latent_dim, scale)
        self.margin = float(margin)

    def target_logit(self, cos_target):
        return cos_target - self.margin


@LOSSES.register("arcface")
class ArcFaceLoss(CosineClassifierLoss):
    """ArcFace: target s * cos(theta_y + m) = s * (cos theta_y cos m - sin theta_y sin m).

    Fallback (insightface's default): where theta_y > pi - m, use cos theta_y - m sin m instead.
    ``easy_margin``: apply the margin only where cos theta_y > 0, elsewhere keep cos theta_y.
    """

    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        scale: PositiveFloat,
        margin: AngleMargin,
        easy_margin: bool,
    ):
        super().__init__(num_classes, latent_dim, scale)
        self.margin = float(margin)
        self.easy_margin = bool(easy_margin)

    def target_logit(self, cos_target):
        cos_target = clamp_cosine(cos_target)
        m = self.margin
        with_margin = cos_target * math.cos(m) - sine_of(cos_target) * math.sin(m)
        if self.easy_margin:
            return torch.where(cos_target > 0, with_margin, cos_target)
        past_pi = cos_target < math.cos(math.pi - m)  # theta_y > pi - m
        return torch.where(past_pi, cos_target - m * math.sin(m), with_margin)


@LOSSES.register("cm")
class CombinedMarginLoss(CosineClassifierLoss):
    """Combined margin: target s * (cos(m1 * theta_y + m2) - m3), theta_y = acos(cos theta_y)."""

    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        scale: PositiveFloat,
        m1: PositiveFloat,
        m2: AngleMargin,
        m3: CosineMargin,
        monotonic_fallback: bool,
        easy_margin: bool,
    ):
        super().__init__(num_classes, latent_dim, scale)
        self.m1, self.m2, self.m3 = float(m1), float(m2), float(m3)
        self.monotonic_fallback = bool(monotonic_fallback)
        self.easy_margin = bool(easy_margin)

    def target_logit(self, cos_target):
        cos_target = clamp_cosine(cos_target)
        theta = torch.acos(cos_target)
        with_margin = torch.cos(self.m1 * theta + self.m2) - self.m3
        if self.easy_margin:
            return torch.where(cos_target > 0, with_margin, cos_target)
        if not self.monotonic_fallback:
            return with_margin
        theta_b = (math.pi - self.m2) / self.m1  # where m1 theta + m2 reaches pi
        fallback = cos_target - (math.cos(theta_b) + 1.0 + self.m3) if theta_b < math.pi else with_margin
        return torch.where(theta > theta_b, fallback, with_margin)
