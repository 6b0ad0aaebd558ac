"""Every loss of the paper, one family per module, behind ``build(name, num_classes, latent_dim, **hp)``.

>>> from podexp.losses import build
>>> loss = build("pod", num_classes=10, latent_dim=32)     # alpha, lam, ... from configs/loss/pod.yaml
"""

# importing a module registers its losses
from podexp.losses import (  # noqa: F401
    center,
    cot,
    lsoftmax,
    margin,
    pedcc_am,
    pedcc_family,
    softmax,
    wsoftmax,
)
from podexp.losses.base import LatentLoss
from podexp.losses.registry import LOSSES, available, build, load_entry_points

load_entry_points()  # losses of other packages (entry-point group podexp.losses), after the built-in ones
__all__ = ["LOSSES", "LatentLoss", "available", "build"]
