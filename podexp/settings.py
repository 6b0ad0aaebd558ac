"""Settings that are not pluggable parts: the trainer's (``trainer``), the loggers' (``logger``) and the
run's top-level keys. Each is a frozen dataclass whose annotated fields are the config keys, so the
validator checks them like a registry's signatures (``podexp.registry``). Their values live in the
config files: ``TrainerSettings`` has no Python defaults, and ``from_config`` fills any key left out
from ``configs/trainer/default.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Mapping

from podexp.errors import shell_path
from podexp.io import CHECKPOINTS_DROPPED_AT_END
from podexp.registry import (
    NonNegativeInt,
    Pattern,
    PositiveFloat,
    PositiveInt,
    Range,
    Registry,
    options_of,
    problems_with,
    raise_problems,
)

# trainer.compile: false (eager), true (= default) or a torch.compile mode ("reduce-overhead" replays the
# step's kernels as CUDA graphs)
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
KeepCheckpoints = Literal[tuple(CHECKPOINTS_DROPPED_AT_END)]
Device = Annotated[str, Pattern(r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:N")]
# The accuracies result.json records (%), which the sweep summary tabulates (aggregate --metric) and
# main() returns to a Hydra sweeper (optimized_metric); the val ones exist with a validation split
# (dataset.val_fraction > 0), best_test_acc without one.
VAL_METRICS = ("final_val_acc", "best_val_acc", "test_acc_at_best_val")
RESULT_METRICS = ("final_test_acc", "best_test_acc", "final_train_acc", *VAL_METRICS)
OptimizedMetric = Literal[RESULT_METRICS]


def plain(cfg) -> dict:
    """A config section (OmegaConf or a mapping) as a dict of its values, interpolations resolved."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)


@dataclass(frozen=True)
class TrainerSettings:
    """The ``trainer`` group (configs/trainer/default.yaml says what each does)."""

    epochs: PositiveInt
    device: Device
    amp: bool
    channels_last: bool
    progress: bool | Literal["auto"]
    checkpoint: bool
    keep_checkpoints: KeepCheckpoints
    on_nan: Literal["stop", "skip"]
    max_skip_fraction: Annotated[float, Range(ge=0, le=1)]
    nan_check_every: PositiveInt
    preempt_check_every: PositiveInt
    cuda_graph: bool | Literal["auto"]
    compile: bool | CompileMode
    sync_bn: bool
    grad_clip: PositiveFloat | None  # clip the gradients' global L2 norm to this before each step; null: off

    @staticmethod
    def values(cfg) -> dict:
        """The trainer keys of ``cfg``; those left out take the values of configs/trainer/default.yaml."""
        from podexp.defaults import group_defaults

        return {**group_defaults("trainer", "default"), **plain(cfg)}

    @staticmethod
    def problems(values: Mapping) -> list[str]:
        return problems_with(options_of(TrainerSettings), values, "trainer.", "trainer")

    @classmethod
    def from_config(cls, cfg) -> TrainerSettings:
        values = cls.values(cfg)
        raise_problems("Invalid trainer settings:", cls.problems(values))
        return cls(**values)


@dataclass(frozen=True)
class LoggerFields:
    """What every logger accepts: experiment files tag their runs whichever logger is chosen."""

    tags: list | None = None


# The loggers' options; metrics.jsonl/csv are always written, ``wandb`` adds a W&B run.
LOGGERS = Registry("logger", config_group="logger", shared=LoggerFields)


@LOGGERS.register("csv")
@dataclass(frozen=True)
class CsvLoggerSettings:
    """metrics.jsonl + metrics.csv in the run folder only."""


@LOGGERS.register("wandb")
@dataclass(frozen=True)
class WandbSettings:
    project: str
    entity: str | None
    group: str | None  # null: <name>:<configuration> (podexp.train.loggers.wandb_group)
    tags: list
    mode: str | None  # null: WANDB_MODE or online; offline | disabled (others: W&B decides)
    log_every_n_steps: NonNegativeInt  # 0: once per epoch only
    init_timeout: PositiveFloat  # seconds wandb.init waits for the server before the offline fallback


@dataclass(frozen=True)
class RunSettings:
    """The top-level keys of configs/train.yaml, and the optional ones experiment files add."""

    name: str  # the experiment's name: W&B group and output folder
    seed: int
    data_root: str
    resume: str | None  # auto | null | PATH (see resume_problem)
    resume_allow_changes: bool
    optimized_metric: OptimizedMetric  # what main() returns to a sweeper (result.json's key)
    allow_failures: bool  # a sweep with failed jobs exits 0 (podexp.train.hydra_callbacks)
    smoke: dict | None = None  # debug=smoke's choices for an experiment (its stand-in dataset)
    label: dict | None = None  # labels that place a run in a table (analysis.runs)


def optimized_metric_problem(metric, val_fraction) -> str | None:
    """A validation metric needs a validation split."""
    if metric in VAL_METRICS and not (isinstance(val_fraction, (int, float)) and val_fraction > 0):
        return (
            f"optimized_metric={metric} is measured on the validation split, but dataset.val_fraction="
            f"{val_fraction} holds none out. Set dataset.val_fraction (e.g. 0.1), or optimise final_test_acc."
        )
    return None


def explicit_checkpoint(setting) -> Path:
    """The checkpoint file ``resume=PATH`` names: the file, or a run folder's ``last.pt``."""
    path = Path(str(setting)).expanduser()
    return path / "last.pt" if path.is_dir() else path


def resume_problem(setting) -> str | None:
    """What is wrong with ``resume=setting``, or None: a PATH must hold a checkpoint (``last.pt``, or its
    ``prev.pt`` beside it)."""
    if setting in (None, "auto"):
        return None
    path = explicit_checkpoint(setting)
    if path.exists() or path.name == "last.pt" and (path.parent / "prev.pt").exists():
        return None
    return (
        f"resume={shell_path(setting)}: no such checkpoint file or run folder. Give a checkpoint file (last.pt or "
        f"prev.pt) or a run folder that holds one, resume=auto to continue in this run's folder, or "
        f"resume=null to start afresh."
    )
