"""Finished jobs of one or more sweeps, and the labels (dataset, loss, ...) that place them in a table.

A job is a folder holding ``config.yaml``. Its label for a key ``k`` is, in order: the override
``label.k=...`` (the smoke mode stands small_cnn in for a swept backbone and keeps the paper's name
there), the override ``k=...`` of the job (``.hydra/overrides.yaml``), then the value at ``k`` in the
resolved config (a config group's ``name`` for ``dataset``/``loss``/``backbone``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf


def parse_overrides(lines: list[str]) -> dict[str, str]:
    """{"dataset": "cifar10", "label.backbone": "vit_b16", ...} from Hydra's override strings."""
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {key.lstrip("+~"): value for key, value in pairs}


@dataclass
class Job:
    path: Path

    @cached_property
    def overrides(self) -> dict[str, str]:
        file = self.path / ".hydra" / "overrides.yaml"
        return parse_overrides(yaml.safe_load(file.read_text()) or []) if file.exists() else {}

    @cached_property
    def config(self) -> DictConfig:
        return OmegaConf.load(self.path / "config.yaml")

    @cached_property
    def result(self) -> dict | None:
        file = self.path / "result.json"
        return json.loads(file.read_text()) if file.exists() else None

    def label(self, key: str) -> str | None:
        for name in (f"label.{key}", key):
            if name in self.overrides:
                return str(self.overrides[name])
        value = OmegaConf.select(self.config, key, default=None)
        if isinstance(value, DictConfig):
            value = value.get("name")
        return None if value is None else str(value)


def find_jobs(sweeps: list[Path]) -> list[Job]:
    """Every job folder under the given sweep folders, in path order."""
    found = []
    for sweep in sweeps:
        for config in sorted(Path(sweep).rglob("config.yaml")):
            if config.parent.name != ".hydra":
                found.append(Job(config.parent))
    return found


def same_value(label: str | None, wanted) -> bool:
    """Labels compare as numbers when both read as numbers (9 == "9", 0.1 == "0.10")."""
    if label is None:
        return False
    try:
        return float(label) == float(wanted)
    except (TypeError, ValueError):
        return label == str(wanted)
