"""PEDCC-Loss (Zhu et al., 2020): AM-Softmax on the cosines to fixed PEDCC centres plus an MSE term.

z -> BatchNorm1d(affine=False) -> normalise = z_hat;  cos_k = z_hat . a_k  (A: the K x d PEDCC);
loss = AM-Softmax(s * cos, margin m on the target) + (sum_i sum_dims (z_hat_i - a_{y_i})^2)^N,
the squared error summed over the batch and the dimensions as in the authors' code (docs/method.md
§4). Prediction: argmax_k of the cosine between the batch-normalised z and a_k (running
statistics in eval mode).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from podexp.fields import LatentDim, NumClasses
from podexp.losses.margin import CosineMargin, am_softmax_cross_entropy
from podexp.losses.pedcc_family import PEDCCLoss
from podexp.losses.registry import LOSSES
from podexp.pedcc import PedccFile, PedccMethod
from podexp.registry import NonNegativeInt, PositiveFloat


@LOSSES.register("pedcc_loss")
class PEDCCAMSoftmaxLoss(PEDCCLoss):
    def __init__(
        self,
        num_classes: NumClasses,
        latent_dim: LatentDim,
        scale: PositiveFloat,
        margin: CosineMargin,
        mse_power: PositiveFloat,
        pedcc_method: PedccMethod,
        pedcc_seed: NonNegativeInt,
        allow_crowded_pedcc: bool,
        pedcc_path: PedccFile | None,
    ):
        super().__init__(num_classes, latent_dim, pedcc_method, pedcc_seed, allow_crowded_pedcc, pedcc_path)
        self.scale, self.margin, self.mse_power = float(scale), float(margin), float(mse_power)
        self.bn = nn.BatchNorm1d(latent_dim, affine=False)

    def normalised_features(self, z, update_running_stats=True):
        """normalise(BatchNorm1d(z)); running statistics are updated only by the training loss."""
        bn = self.bn
        if self.training and not update_running_stats:
            z = F.batch_norm(z, None, None, training=True, eps=bn.eps)
        else:
            z = bn(z)
        return F.normalize(z, dim=1)

    def scores(self, z):
        return (self.normalised_features(z, update_running_stats=False) @ self.pedcc.T).clamp(-1.0, 1.0)

    def compute(self, z, y, objective=0):
        z_hat = self.normalised_features(z)
        cos = (z_hat @ self.pedcc.T).clamp(-1.0, 1.0)
        squared_error = (z_hat - self.pedcc[y]).pow(2).sum()
        return am_softmax_cross_entropy(cos, y, self.scale, self.margin) + squared_error.pow(self.mse_power)
