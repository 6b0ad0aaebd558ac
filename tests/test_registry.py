"""The one registry kind: options read from annotations, every problem reported with the known names,
defaults filled from the config files; and every registry's entries agree with their config files."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Literal

import pytest
from omegaconf import OmegaConf

from podexp.data import DATASETS
from podexp.defaults import CONFIG_DIR, config_file, group_defaults
from podexp.errors import ConfigError
from podexp.losses import LOSSES
from podexp.models import BACKBONES
from podexp.optim import OPTIMIZERS, SCHEDULES
from podexp.registry import (
    EMPTY,
    Pattern,
    PositiveFloat,
    Range,
    Registry,
    option_from_annotation,
    options_of,
    problems_with,
)
from podexp.settings import LOGGERS, TrainerSettings


def test_annotations_become_options():
    assert option_from_annotation("x", Annotated[float, Range(gt=0)]).problem("x", 0.0) == "x=0.0: must be > 0."
    assert option_from_annotation("x", int).problem("x", 1.5) == "x=1.5: must be an integer."
    assert option_from_annotation("x", int).problem("x", True) == "x=True: must be an integer."
    assert option_from_annotation("x", float).problem("x", float("inf")) == "x=inf: must be a finite number."
    assert option_from_annotation("x", float).problem("x", 2) is None
    choice = option_from_annotation("x", Literal["a", "b"])
    assert choice.problem("x", "c") == "x=c: use a or b." and choice.problem("x", None) == "x=null: must be a or b."
    mixed = option_from_annotation("x", bool | Literal["auto"])
    assert [mixed.problem("x", v) for v in (True, "auto")] == [None, None]
    assert mixed.problem("x", 1) == "x=1: use false, true or auto."  # 1 is not true
    nullable = option_from_annotation("x", Annotated[int, Range(ge=1)] | None)
    assert nullable.problem("x", None) is None and nullable.problem("x", 0) == "x=0: must be >= 1."
    device = option_from_annotation("x", Annotated[str, Pattern(r"cpu|cuda(:\d+)?", "cpu or cuda:N")])
    assert device.problem("x", "cuda:1") is None and device.problem("x", "gpu") == "x=gpu: use cpu or cuda:N."
    assert option_from_annotation("x", list).problem("x", OmegaConf.create([1, 2])) is None


def test_unknown_and_missing_keys_name_the_closest_and_the_accepted_ones():
    def fn(*, scale: PositiveFloat, margin: float = 0.1):
        return scale, margin

    problems = problems_with(options_of(fn), {"scal": 3}, "loss.", "loss 'x'")
    assert problems == [
        "loss.scal: loss 'x' has no option 'scal'. Did you mean loss.scale? It accepts: "
        "scale (a number > 0), margin (a number).",
        "loss.scale: missing; loss 'x' needs it (a number > 0).",
    ]


@dataclass(frozen=True)
class Common:
    batch: Annotated[int, Range(ge=1)]
    extra: str | None = None


def test_build_checks_context_and_options_at_once_and_passes_an_entry_only_its_own_options():
    things = Registry("thing", context=("k",), shared=Common)
    seen = {}

    @things.register("plain", streamed=True)
    def plain(k: Annotated[int, Range(ge=2)], *, width: int):
        seen.update(k=k, width=width)
        return "built"

    assert things.attributes("plain") == {"streamed": True}
    assert set(things.signature("plain")) == {"batch", "extra", "width"}
    assert things.build("plain", 3, width=4, batch=8) == "built" and seen == {"k": 3, "width": 4}
    assert things.resolve("plain", {"width": 4, "batch": 8})["extra"] is None  # Python default of a shared one
    with pytest.raises(ConfigError) as err:
        things.build("plain", 1, width=4.5, batch=8, widht=3)
    assert str(err.value).splitlines() == [
        "Cannot build thing 'plain':",
        "  - k=1: must be >= 2.",
        "  - thing.widht: thing 'plain' has no option 'widht'. Did you mean thing.width? It accepts: batch (an "
        "integer >= 1), extra (a string or null), width (an integer).",
        "  - thing.width=4.5: must be an integer.",
    ]
    with pytest.raises(ConfigError, match=r"thing=plan: unknown thing. Did you mean thing=plain\? Registered: plain."):
        things.build("plan", 3)
    with pytest.raises(ValueError, match="registered twice"):
        things.register("plain")(plain)


# -- every registry agrees with its config files -----------------------------------------------------

GROUPS = {"loss": LOSSES, "backbone": BACKBONES, "optim": OPTIMIZERS, "sched": SCHEDULES}
ENTRIES = [(group, name) for group, registry in GROUPS.items() for name in registry.available()]


@pytest.mark.parametrize("group,name", ENTRIES, ids=[f"{g}/{n}" for g, n in ENTRIES])
def test_each_entry_takes_its_defaults_from_its_config_file_only(group, name):
    """configs/<group>/<name>.yaml exists (so Hydra's --help and `group=name` know it), holds every
    option and no other key, and no option has a Python default: the file is the one home."""
    registry = GROUPS[group]
    assert config_file(group, name).exists()
    signature = registry.signature(name)
    assert set(group_defaults(group, name)) == set(signature)
    assert [k for k, o in signature.items() if o.default is not EMPTY] == []
    assert registry.problems(name, registry.defaults(name)) == []


def _name_in(path):
    """The ``name`` a config file sets, or inherits from the file its defaults list starts with."""
    cfg = OmegaConf.load(path)
    return cfg.get("name") or _name_in(path.with_name(f"{cfg.defaults[0]}.yaml"))


def test_every_config_file_of_a_group_names_a_registered_entry():
    for group, registry in {**GROUPS, "dataset": DATASETS, "logger": LOGGERS}.items():
        for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
            assert _name_in(path) in registry, path
        assert {p.stem for p in (CONFIG_DIR / group).glob("*.yaml")} >= set(registry.available())


def test_the_trainer_settings_are_the_trainer_file_keys_without_python_defaults():
    written = group_defaults("trainer", "default")
    assert [f.name for f in fields(TrainerSettings)] == list(written)
    assert TrainerSettings.from_config({}) == TrainerSettings(**written)
    assert TrainerSettings.from_config({"nan_check_every": 7}).nan_check_every == 7
    with pytest.raises(
        ConfigError, match=r"trainer.epoch: trainer has no option 'epoch'. Did you mean trainer.epochs\?"
    ):
        TrainerSettings.from_config({"epoch": 3})
    with pytest.raises(TypeError):
        TrainerSettings()  # no field has a default outside the config file
