"""The loss registry. ``build(name, num_classes, latent_dim, **hparams)`` fills every hyper-parameter
left out from ``configs/loss/<name>.yaml``, the one home of the project's defaults."""

from __future__ import annotations

from podexp.registry import Registry

LOSSES = Registry("loss", context=("num_classes", "latent_dim"), config_group="loss")


def available() -> list[str]:
    return LOSSES.available()


def build(name: str, num_classes: int, latent_dim: int, **hparams):
    """The loss ``name`` for K = ``num_classes`` classes and latent dimension d = ``latent_dim``, with the
    config file's hyper-parameters overridden by ``hparams``."""
    return LOSSES.build(name, num_classes, latent_dim, **hparams)
