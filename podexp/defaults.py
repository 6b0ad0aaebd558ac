"""Where the project's defaults live: the config files (``configs/``, shipped inside the package as
``podexp/configs``). Python code that builds a part by name reads its defaults from here, so a
default is written once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def config_file(group: str, name: str) -> Path:
    return CONFIG_DIR / group / f"{name}.yaml"


@lru_cache(maxsize=None)
def _load(group: str, name: str) -> dict:
    path = config_file(group, name)
    if not path.exists():
        return {}
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    merged: dict = {}
    for parent in raw.pop("defaults", None) or []:  # e.g. optim/sgd_imagenet: [sgd, _self_]
        if isinstance(parent, str) and parent != "_self_":
            merged.update(_load(group, parent))
    merged.update(raw)
    return merged


def group_defaults(group: str, name: str) -> dict:
    """The options of ``configs/<group>/<name>.yaml`` (without ``name``), or ``{}`` if there is none."""
    return {k: v for k, v in _load(group, name).items() if k != "name"}
