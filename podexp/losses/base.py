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

``loss(z, y)`` and ``predict(z)`` check their arguments first (``check_batch``): misuse is a ``TypeError``
or ``ValueError`` naming ``z``, ``y``, ``num_classes`` and ``latent_dim``, not an indexing error deep in a
loss (a label of -1 would otherwise wrap to class K-1, an empty batch give NaN). The checks read shapes
and dtypes only; the label range is read on the CPU and asserted asynchronously on an accelerator, so a
training step does not wait for the device.
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
    # On the CPU the label range is checked with a host read; the Trainer turns that off (its data's labels
    # were checked when read: ``podexp.data``), so its step reads nothing on the host, as a CUDA graph needs.
    # On CUDA the check is a device-side assertion and always on.
    check_label_range_on_host: bool = True

    def __init__(self, num_classes: int, latent_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.latent_dim = latent_dim

    # -- what subclasses implement -------------------------------------------------------------
    def compute(self, z: torch.Tensor, y: torch.Tensor, objective: int = 0) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- argument checks -----------------------------------------------------------------------
    def check_latent(self, z, call: str = "loss(z, y)") -> None:
        """``z`` is a floating (B, latent_dim) tensor with B >= 1."""
        d = self.latent_dim
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"{call}: z must be a torch.Tensor of shape (B, latent_dim={d}); got {type(z).__name__}.")
        if not z.is_floating_point():
            raise TypeError(f"{call}: z must be a floating-point tensor (the latent features); got dtype {z.dtype}.")
        if z.dim() != 2 or z.shape[1] != d:
            raise ValueError(
                f"{call}: z has shape {tuple(z.shape)}; expected (B, {d}), one row of latent_dim={d} features per "
                f"sample. Build the loss with the latent_dim of your network's FC1 output."
            )
        if z.shape[0] == 0:
            raise ValueError(f"{call}: the batch is empty (z has 0 rows); the loss of no samples is undefined.")

    def check_batch(self, z, y) -> None:
        """``check_latent(z)``; ``y`` is a (B,) integer tensor of class indices in [0, num_classes)."""
        self.check_latent(z)
        k, batch = self.num_classes, z.shape[0]
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"loss(z, y): y must be a torch.Tensor of class indices; got {type(y).__name__}.")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(
                f"loss(z, y): y must hold integer class indices (e.g. torch.long) in [0, num_classes={k}); "
                f"got dtype {y.dtype}. One-hot or soft labels are not supported: pass y.argmax(1)."
            )
        if tuple(y.shape) != (batch,):
            raise ValueError(
                f"loss(z, y): y has shape {tuple(y.shape)}; expected ({batch},), one class index per row of z."
            )
        in_range = f"loss(z, y): every label in y must lie in [0, num_classes={k})"
        if y.device.type == "cpu":
            if not self.check_label_range_on_host:
                return
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= k:
                raise ValueError(f"{in_range}; found {low if low < 0 else high}.")
        else:  # no host synchronisation: the device raises at its next synchronisation point
            torch._assert_async(((y >= 0) & (y < k)).all(), in_range + ".")

    # -- the public interface ------------------------------------------------------------------
    def forward(self, z: torch.Tensor, y: torch.Tensor, objective: int = 0) -> torch.Tensor:
        self.check_batch(z, y)
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.compute(z.float(), y.long(), objective)  # any integer dtype: int32/uint8 labels too

    @torch.no_grad()
    def predict(self, z: torch.Tensor) -> torch.Tensor:
        self.check_latent(z, "predict(z)")
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
