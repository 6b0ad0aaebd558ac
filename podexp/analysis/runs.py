"""The jobs of one or more sweeps, the labels (dataset, loss, ...) that place them in a table, and the
cell that gathers the jobs of one configuration (a summary row or a table cell).

A job is a folder holding ``config.yaml`` or ``failed.json`` (a config rejected before its
``config.yaml`` was written), or Hydra's ``.hydra/``; it finished when it holds ``result.json``, and
every other job counts as failed or unfinished, never silently dropped. Its label for a key ``k`` is,
in order: the override ``label.k=...`` (the smoke mode stands small_cnn in for a swept backbone and
keeps the paper's name there), the override ``k=...`` of the job (``.hydra/overrides.yaml``), then
the value at ``k`` in the resolved config (a config group's ``name`` for ``dataset``/``loss``/``backbone``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from podexp.io import read_json
from podexp.keys import override_key

JOB_MARKERS = ("config.yaml", "failed.json")


def parse_overrides(lines: list[str]) -> dict[str, str]:
    """{"dataset": "cifar10", "label.backbone": "vit_b16", ...} from Hydra's override strings."""
    return {override_key(line): line.split("=", 1)[1] for line in lines if "=" in line}


@dataclass
class Job:
    path: Path

    @cached_property
    def override_lines(self) -> list[str]:
        """The job's command-line overrides as Hydra recorded them."""
        file = self.path / ".hydra" / "overrides.yaml"
        return list(yaml.safe_load(file.read_text()) or []) if file.exists() else []

    @cached_property
    def overrides(self) -> dict[str, str]:
        return parse_overrides(self.override_lines)

    @cached_property
    def config(self) -> DictConfig:
        """The resolved config (empty for a job whose config was rejected before it was written)."""
        file = self.path / "config.yaml"
        return OmegaConf.load(file) if file.exists() else OmegaConf.create()

    @cached_property
    def result(self) -> dict | None:
        """``result.json``; None while the job has not finished (failed, running or killed)."""
        return read_json(self.path / "result.json")

    def label(self, key: str) -> str | None:
        for name in (f"label.{key}", key):
            if name in self.overrides:
                return str(self.overrides[name])
        value = OmegaConf.select(self.config, key, default=None)
        if isinstance(value, DictConfig):
            value = value.get("name")
        return None if value is None else str(value)


def find_jobs(sweeps: list[Path]) -> list[Job]:
    """Every job folder under the given sweep folders, in path order. A job Hydra launched counts even
    when it died before writing anything (its ``.hydra/config.yaml`` marks it); folders inside a job
    (W&B's ``wandb/*/files/config.yaml``) do not."""
    found = set()
    for sweep in sweeps:
        for marker in (m for name in JOB_MARKERS for m in Path(sweep).rglob(name)):
            found.add(marker.parent.parent if marker.parent.name == ".hydra" else marker.parent)
    return [Job(path) for path in sorted(found) if not any(parent in found for parent in path.parents)]


def same_value(label: str | None, wanted) -> bool:
    """Labels compare as numbers when both read as numbers (9 == "9", 0.1 == "0.10")."""
    if label is None:
        return False
    try:
        return float(label) == float(wanted)
    except (TypeError, ValueError):
        return label == str(wanted)


@dataclass
class Cell:
    """The jobs of one configuration: the value of each finished one (one per seed), the folder names of
    the others, and the paper's number where there is one. n, mean and sample std are over the values;
    None when there are none."""

    values: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    paper: float | None = None

    def add(self, value: float | None, job: str = "") -> None:
        """Record one job: its value, or None when it failed or did not finish."""
        if value is None:
            self.failed.append(job)
        else:
            self.values.append(float(value))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        if not self.values:
            return None
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def diff(self) -> float | None:
        return None if self.mean is None or self.paper is None else self.mean - self.paper
