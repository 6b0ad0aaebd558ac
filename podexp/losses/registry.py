"""The loss registry. ``build(name, num_classes, latent_dim, **hparams)`` fills every hyper-parameter
left out from ``configs/loss/<name>.yaml``, the one home of the project's defaults.

Losses of other packages join through the ``podexp.losses`` entry-point group (README, "Your own loss"):
an entry ``NAME = "module:Class"`` registers ``Class`` as ``loss=NAME``; an entry naming a module imports it,
and its ``@LOSSES.register(...)`` decorators register its losses.
"""

from __future__ import annotations

import inspect
import logging
from importlib.metadata import entry_points

from podexp.registry import Registry

log = logging.getLogger(__name__)

LOSSES = Registry("loss", context=("num_classes", "latent_dim"), config_group="loss")
ENTRY_POINT_GROUP = "podexp.losses"


def available() -> list[str]:
    return LOSSES.available()


def build(name: str, num_classes: int, latent_dim: int, **hparams):
    """The loss ``name`` for K = ``num_classes`` classes and latent dimension d = ``latent_dim``, with the
    config file's hyper-parameters overridden by ``hparams``."""
    return LOSSES.build(name, num_classes, latent_dim, **hparams)


def load_entry_points() -> None:
    """Register the losses installed packages declare in the ``podexp.losses`` entry-point group. One that
    fails to import is left out with a warning naming it, so the other losses stay usable."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as err:
            log.warning(
                "The loss plugin %s = %s (entry point group %s) failed to import (%s: %s); loss=%s is not "
                "available. Fix or uninstall the package that declares it.",
                entry.name,
                entry.value,
                ENTRY_POINT_GROUP,
                err.__class__.__name__,
                err,
                entry.name,
            )
            continue
        if not inspect.ismodule(loaded) and entry.name not in LOSSES:
            LOSSES.register(entry.name)(loaded)
