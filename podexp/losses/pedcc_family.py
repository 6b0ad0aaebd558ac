"""Softmax-free losses on the fixed PEDCC head: Cosine, NaC and POD (docs/method.md §3).

All three predict with the cosine to the PEDCC (paper eq. 21-24): argmax_k cos(z, a_k).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from podexp.fields import LatentDim, NumClasses
from podexp.losses.base import LatentLoss
from podexp.losses.registry import LOSSES
from podexp.pedcc import PedccFile, PedccMethod, load_pedcc, make_pedcc
from podexp.registry import NonNegativeFloat, NonNegativeInt, PositiveFloat

# the norm NaC/POD's v follows: of the latent z (the paper) or of the projection z A^T (the authors' code)
NormSource = Literal["latent", "projection"]
# SC's matrix C: second moments of r (the authors' code) or correlation coefficients (the paper's word)
SCNormalisation = Literal["second_moment", "correlation"]


class PEDCCLoss(LatentLoss):
    """Base for losses whose classifier is the fixed K x d PEDCC matrix ``self.pedcc`` (a buffer): built by
    ``pedcc_method``/``pedcc_seed``, or read from ``pedcc_path`` (e.g. the authors' centre file) when given.
    ``allow_crowded_pedcc``: build it even for d = 1 with K > 2, where centres cannot be told apart
    (``podexp.pedcc.crowding_problem``)."""

    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        pedcc_method: PedccMethod,
        pedcc_seed: NonNegativeInt,
        allow_crowded_pedcc: bool,
        pedcc_path: PedccFile | None,
    ):
        super().__init__(num_classes, latent_dim)
        self.pedcc_method, self.pedcc_seed, self.pedcc_path = pedcc_method, int(pedcc_seed), pedcc_path
        self.allow_crowded_pedcc = bool(allow_crowded_pedcc)
        centres = (
            load_pedcc(pedcc_path, num_classes, latent_dim)
            if pedcc_path is not None
            else make_pedcc(num_classes, latent_dim, pedcc_method, pedcc_seed, allow_crowded=allow_crowded_pedcc)
        )
        self.register_buffer("pedcc", centres)

    def scores(self, z):
        return F.normalize(z, dim=1) @ self.pedcc.T


def target_cosine(z, centres, y, extra_sq_norm=0.0):
    """z_i . a_{y_i} / sqrt(|z_i|^2 + extra): the cosine to the own centre (NaC's eq. 12 with v^2)."""
    dot = (z * centres[y]).sum(1)
    return dot / (z.pow(2).sum(1) + extra_sq_norm).sqrt().clamp_min(1e-12)


@LOSSES.register("cosine")
class CosineLoss(PEDCCLoss):
    """L_cos = mean_i (1 - cos(z_i, a_{y_i}))^2  (paper eq. 9)."""

    def compute(self, z, y, objective=0):
        return (1 - target_cosine(z, self.pedcc, y)).pow(2).mean()


@LOSSES.register("nac")
class NaCLoss(PEDCCLoss):
    """Norm-adaptive Cosine loss (eq. 12-17): mean_i (1 - z_i.a_{y_i} / sqrt(|z_i|^2 + v^2))^2.

    v starts at ``v0`` and after epoch e (0-based) becomes alpha * (e + 1) * m_e, where m_e is the mean
    L2 norm, over the epoch's training samples, of the latent z (``v_norm_source=latent``, the paper)
    or of the PEDCC projection z A^T (``projection``, the authors' code). v is constant within an epoch.
    """

    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        alpha: PositiveFloat,
        v0: NonNegativeFloat,
        v_norm_source: NormSource,
        pedcc_method: PedccMethod,
        pedcc_seed: NonNegativeInt,
        allow_crowded_pedcc: bool,
        pedcc_path: PedccFile | None,
    ):
        super().__init__(num_classes, latent_dim, pedcc_method, pedcc_seed, allow_crowded_pedcc, pedcc_path)
        self.alpha, self.v0 = float(alpha), float(v0)
        self.v_norm_source = v_norm_source
        self.register_buffer("v_value", torch.tensor(float(v0)))
        # running sums of the epoch's norms, kept as buffers so a mid-epoch checkpoint holds them
        self.register_buffer("norm_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("norm_count", torch.zeros((), dtype=torch.float64))

    @property
    def v(self) -> float:
        return float(self.v_value)

    def _accumulate_norms(self, z):
        """Add the batch's finite norms to the epoch's sums: a row with a NaN or inf (a diverging step,
        which the trainer skips or stops on) is left out, so v stays finite (no host synchronisation)."""
        source = z if self.v_norm_source == "latent" else z @ self.pedcc.T
        norms = source.detach().norm(dim=1).double()
        finite = torch.isfinite(norms)
        self.norm_sum += torch.where(finite, norms, torch.zeros_like(norms)).sum()
        self.norm_count += finite.sum()

    def nac(self, z, y):
        if self.training:
            self._accumulate_norms(z)
        return (1 - target_cosine(z, self.pedcc, y, self.v_value.pow(2))).pow(2).mean()

    def compute(self, z, y, objective=0):
        return self.nac(z, y)

    def on_epoch_end(self, epoch, all_reduce):
        total, count = all_reduce(self.norm_sum.clone()), all_reduce(self.norm_count.clone())
        if count > 0:
            v = self.alpha * (epoch + 1) * float(total / count)
            # a v beyond v_value's range is inf (not an overflow error): the trainer's finite-state check then
            # stops the run naming loss.v_value, with the last good checkpoint kept
            self.v_value.fill_(v if abs(v) <= torch.finfo(self.v_value.dtype).max else float("inf"))
        self.norm_sum.zero_()
        self.norm_count.zero_()

    def state_metrics(self):
        return {"v": self.v}


def self_correlation_loss(z, centres, y, normalise: SCNormalisation):
    """SC constraint (eq. 18-19) as in the authors' code.

    r_i = z_i/|z_i| - a_{y_i};  C = (1/(B-1)) sum_i r_i r_i^T  (d x d, no mean subtraction);
    L_SC = sum_{j != k} C_jk^2 / (d - 1).  With ``normalise="correlation"`` every column of r is
    standardised over the batch first, so C is the correlation-coefficient matrix the paper names.
    The off-diagonal sum is computed without forming C when B < d:
    sum_{j,k} C_jk^2 = |R R^T|_F^2 / (B-1)^2 and the diagonal is C_jj = sum_i r_ij^2 / (B-1).
    """
    batch, dim = z.shape
    if batch < 2 or dim < 2:
        return z.new_zeros(())
    r = F.normalize(z, dim=1) - centres[y]
    if normalise == "correlation":
        r = (r - r.mean(0)) / r.std(0).clamp_min(1e-6)
    gram = r @ r.T if batch < dim else r.T @ r
    off_diagonal = gram.pow(2).sum() - r.pow(2).sum(0).pow(2).sum()
    return off_diagonal / ((batch - 1) ** 2 * (dim - 1))


@LOSSES.register("pod")
class PODLoss(NaCLoss):
    """POD = L_NaC + lam * L_SC (docs/method.md §3); defaults (lam = 1, alpha = 0.01) in configs/loss/pod.yaml."""

    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        alpha: PositiveFloat,
        lam: NonNegativeFloat,
        v0: NonNegativeFloat,
        v_norm_source: NormSource,
        sc_normalise: SCNormalisation,
        pedcc_method: PedccMethod,
        pedcc_seed: NonNegativeInt,
        allow_crowded_pedcc: bool,
        pedcc_path: PedccFile | None,
    ):
        super().__init__(
            num_classes, latent_dim, alpha, v0, v_norm_source, pedcc_method, pedcc_seed, allow_crowded_pedcc, pedcc_path
        )
        self.lam = float(lam)
        self.sc_normalise = sc_normalise

    def compute(self, z, y, objective=0):
        loss = self.nac(z, y)
        if self.lam:
            loss = loss + self.lam * self_correlation_loss(z, self.pedcc, y, self.sc_normalise)
        return loss
