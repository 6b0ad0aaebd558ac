"""The trainer's settings as one typed, frozen record (the ``trainer`` config group).

The fields are the keys of ``configs/trainer/default.yaml``, which holds their defaults and comments;
nothing here has a default of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class TrainerSettings:
    epochs: int
    device: str                  # auto | cpu | cuda | cuda:N
    amp: bool
    channels_last: bool
    progress: str | bool         # auto | true | false
    checkpoint: bool
    on_nan: str                  # stop | skip
    nan_check_every: int
    preempt_check_every: int
    compile: bool | str          # false | true | a torch.compile mode
    sync_bn: bool

    @classmethod
    def from_config(cls, trainer_cfg) -> "TrainerSettings":
        """The settings of a composed ``cfg.trainer`` (every key must be there: the YAML gives them)."""
        return cls(**{f.name: trainer_cfg[f.name] for f in fields(cls)})
