"""Name -> loss class registry and the ``build`` factory (in the spirit of timm's create_model)."""
from __future__ import annotations

import inspect

from podexp.errors import ConfigError, unknown_name

_LOSSES: dict[str, type] = {}


def register(name: str):
    def wrap(cls):
        _LOSSES[name] = cls
        cls.loss_name = name
        return cls
    return wrap


def available() -> list[str]:
    return sorted(_LOSSES)


def hyperparameters(name: str) -> dict:
    """The hyper-parameters ``name`` accepts, with their defaults."""
    sig = inspect.signature(_LOSSES[name].__init__)
    return {k: p.default for k, p in sig.parameters.items()
            if k not in ("self", "num_classes", "latent_dim")}


def build(name: str, num_classes: int, latent_dim: int, **hparams):
    """Build the loss ``name`` for K = ``num_classes`` classes and latent dimension d = ``latent_dim``."""
    if name not in _LOSSES:
        raise unknown_name("loss", name, _LOSSES)
    accepted = hyperparameters(name)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ConfigError(f"Loss '{name}' has no hyper-parameter(s) {', '.join(unknown)}. "
                          f"It accepts: {', '.join(f'{k}={v}' for k, v in accepted.items()) or 'none'}.")
    if num_classes < 2:
        raise ConfigError(f"A classifier needs at least 2 classes; got num_classes={num_classes}.")
    if latent_dim < 1:
        raise ConfigError(f"The latent dimension must be at least 1; got latent_dim={latent_dim}. "
                          f"Set dataset.latent_dim to a positive integer.")
    return _LOSSES[name](num_classes=num_classes, latent_dim=latent_dim, **hparams)
