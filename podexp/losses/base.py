"""The interface every loss follows: it sees the latent z of FC1 and owns its classifier.

* ``loss(z, y)`` -> scalar training loss (computed in fp32 even under autocast);
* ``loss.predict(z)`` -> (B, K) scores whose argmax is the predicted class (margin-free);
* ``loss.weight`` (K x d) where a learnt class-weight matrix exists; ``loss.pedcc`` for fixed centres.

Hooks the trainer calls, so that no loss needs a special case in the training loop:

* ``num_objectives``: how many optimisation steps per batch (COT: 2); the trainer gives each
  objective its own optimiser and calls ``loss(z, y, objective=i)`` on a fresh forward pass;
* ``param_groups(lr)``: optimiser settings for the loss's own parameters (centre loss: lr alpha, no wd);
* ``on_step(global_step)``: before every training step (L-Softmax's lambda annealing);
* ``on_epoch_end(epoch, all_reduce)``: after every training epoch (NaC/POD's v update);
* ``state_metrics()``: floats worth logging each epoch (v, lambda).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def target_mask(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, K) bools, true at column y_i of row i: ``F.one_hot(y, K).bool()`` without its host read of
    ``y``'s range (on the CPU), so a training step stays graph-ready (``podexp.train.graph``)."""
    return torch.zeros_like(logits, dtype=torch.bool).scatter_(1, y[:, None], True)


class LatentLoss(nn.Module):
    num_objectives: int = 1

    def __init__(self, num_classes: int, latent_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.latent_dim = latent_dim

    # -- what subclasses implement -------------------------------------------------------------
    def compute(self, z: torch.Tensor, y: torch.Tensor, objective: int = 0) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- the public interface ------------------------------------------------------------------
    def forward(self, z: torch.Tensor, y: torch.Tensor, objective: int = 0) -> torch.Tensor:
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.compute(z.float(), y, objective)

    @torch.no_grad()
    def predict(self, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.scores(z.float())

    def param_groups(self, lr: float) -> list[dict]:
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": params}] if params else []

    def on_step(self, global_step: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, all_reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        pass

    def state_metrics(self) -> dict[str, float]:
        return {}

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, latent_dim={self.latent_dim}"
