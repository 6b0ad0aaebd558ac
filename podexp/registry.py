"""One registry kind for every pluggable part: losses, backbones, datasets, optimisers, schedules,
analysis measures and figures (in the spirit of timm's ``create_model``).

A registered callable's keyword parameters are its options. Their annotations say what a value may
be, and the validator (``podexp.validate``) reads nothing else:

* a plain type: ``float`` (finite), ``int``, ``bool``, ``str``, ``list``, ``dict``;
* ``Literal["a", "b"]`` for a fixed set of choices;
* ``Annotated[float, Range(gt=0)]`` for a bounded number;
* ``X | None`` where ``null`` is allowed.

Defaults have one home, the config files: when a registry names a config group, ``build(name)`` fills
every option the caller leaves out from ``configs/<group>/<name>.yaml`` (``podexp.defaults``).
"""
from __future__ import annotations

import difflib
import inspect
import math
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

from podexp.errors import ConfigError

EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``Range(gt=0)`` is > 0, ``Range(ge=0, lt=1)`` is in [0, 1)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def contains(self, value: float) -> bool:
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))

    def describe(self) -> str:
        low = f"> {self.gt}" if self.gt is not None else f">= {self.ge}" if self.ge is not None else ""
        high = f"< {self.lt}" if self.lt is not None else f"<= {self.le}" if self.le is not None else ""
        return " and ".join(b for b in (low, high) if b)


@dataclass(frozen=True)
class Option:
    """One keyword a registered callable accepts: what its values may be, and its Python default."""

    name: str
    kind: type | None                 # float, int, bool, str, list, dict; None: anything
    choices: tuple | None = None      # Literal[...] values
    range: Range | None = None
    nullable: bool = False
    default: Any = EMPTY

    def describe(self) -> str:
        if self.choices is not None:
            text = " | ".join(map(str, self.choices))
        else:
            text = self.kind.__name__ if self.kind is not None else "any value"
            if self.range is not None:
                text += f" {self.range.describe()}"
        return text + (" or null" if self.nullable else "")

    def problem(self, key: str, value) -> str | None:
        """What is wrong with ``key=value`` for this option, or None."""
        if value is None:
            return None if self.nullable or self.kind is None else f"{key}=null: must be {self.describe()}."
        if self.choices is not None:
            return None if value in self.choices else f"{key}={value}: use one of {', '.join(map(str, self.choices))}."
        if not _is_kind(value, self.kind):
            return f"{key}={value!r}: must be {self.describe()}."
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if not math.isfinite(value):
                return f"{key}={value}: must be a finite number."
            if self.range is not None and not self.range.contains(value):
                return f"{key}={value}: must be {self.range.describe()}."
        return None


def _is_kind(value, kind) -> bool:
    if kind is None:
        return True
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float):
        base = numbers.Integral if kind is int else numbers.Real
        return isinstance(value, base) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, typing.Sequence) and not isinstance(value, str) or _is_omegaconf(value, "list")
    if kind is dict:
        return isinstance(value, typing.Mapping) or _is_omegaconf(value, "dict")
    return isinstance(value, kind)


def _is_omegaconf(value, what: str) -> bool:
    from omegaconf import OmegaConf

    return OmegaConf.is_list(value) if what == "list" else OmegaConf.is_dict(value)


def option_from_annotation(name: str, annotation, default=EMPTY) -> Option:
    """The ``Option`` an annotation (already evaluated) describes."""
    bounds, nullable = None, False
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        bounds = next((e for e in extra if isinstance(e, Range)), None)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else None
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            bounds = next((e for e in extra if isinstance(e, Range)), bounds)
    if typing.get_origin(annotation) is Literal:
        return Option(name, None, tuple(typing.get_args(annotation)), None, nullable, default)
    origin = typing.get_origin(annotation) or annotation
    kind = {list: list, tuple: list, dict: dict}.get(origin, origin)
    if kind not in (float, int, bool, str, list, dict):
        kind = None
    return Option(name, kind, None, bounds, nullable, default)


def options_of(fn: Callable, skip: Iterable[str] = ()) -> dict[str, Option]:
    """The keyword options of ``fn`` (a function, or a class's ``__init__``), minus ``skip``."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    hints = typing.get_type_hints(target, include_extras=True)
    skipped = {"self", *skip}
    return {name: option_from_annotation(name, hints.get(name, Any), p.default)
            for name, p in inspect.signature(target).parameters.items()
            if name not in skipped and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def problems_with(options: Mapping[str, Option], given: Mapping, prefix: str,
                  owner: str, ignore: Iterable[str] = ()) -> list[str]:
    """Every problem of the keyword values ``given`` against ``options``: unknown keys (with the
    closest known one), values of the wrong type or out of range. ``prefix`` names them as on the
    command line (``loss.``)."""
    ignored = set(ignore)
    problems = []
    for key in sorted(set(given) - set(options) - ignored):
        close = difflib.get_close_matches(key, list(options), n=1)
        hint = f" Did you mean {prefix}{close[0]}?" if close else ""
        accepted = ", ".join(f"{k} ({o.describe()})" for k, o in options.items()) or "none"
        problems.append(f"{prefix}{key}: {owner} has no option '{key}'.{hint} It accepts: {accepted}.")
    for key, option in options.items():
        if key in given:
            problems.append(option.problem(f"{prefix}{key}", given[key]))
        elif option.default is EMPTY:
            problems.append(f"{prefix}{key}: missing; {owner} needs it ({option.describe()}).")
    return [p for p in problems if p]


class Registry:
    """Name -> callable, for one ``kind`` of part.

    ``context`` names the parameters the framework passes itself (a loss's ``num_classes`` and
    ``latent_dim``), which are not options a user sets. ``config_group`` is the config folder whose
    ``<name>.yaml`` holds the defaults of ``build(name)``.
    """

    def __init__(self, kind: str, *, context: tuple[str, ...] = (), config_group: str | None = None):
        self.kind, self.context, self.config_group = kind, tuple(context), config_group
        self._entries: dict[str, Callable] = {}

    def register(self, name: str):
        """Decorator: ``@LOSSES.register("pod")``."""
        def wrap(fn):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = fn
            return fn
        return wrap

    def available(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def unknown(self, name) -> str:
        """The sentence for an unknown ``name``: what is registered, and the closest match."""
        close = difflib.get_close_matches(str(name), self.available(), n=1)
        hint = f" Did you mean {self.kind}={close[0]}?" if close else ""
        return f"{self.kind}={name}: unknown {self.kind}.{hint} Registered: {', '.join(self.available())}."

    def get(self, name: str) -> Callable:
        if name not in self._entries:
            raise ConfigError(self.unknown(name))
        return self._entries[name]

    def signature(self, name: str) -> dict[str, Option]:
        """The options ``name`` accepts (its keyword parameters minus the context)."""
        return options_of(self.get(name), self.context)

    def defaults(self, name: str) -> dict:
        """The project defaults of ``name``: its config file's values (``{}`` without a config group)."""
        if self.config_group is None:
            return {}
        from podexp.defaults import group_defaults

        return group_defaults(self.config_group, name)

    def problems(self, name: str, given: Mapping, prefix: str = "", ignore: Iterable[str] = ()) -> list[str]:
        if name not in self._entries:
            return [self.unknown(name)]
        return problems_with(self.signature(name), given, prefix, f"{self.kind} '{name}'", ignore)

    def build(self, name: str, *args, **options):
        """Call ``name`` with the context ``args`` and its options: the config file's defaults,
        overridden by ``options``. Raises one ``ConfigError`` listing every problem."""
        values = {**self.defaults(name), **options}
        problems = self.problems(name, values, prefix=f"{self.config_group or self.kind}.")
        if problems:
            raise ConfigError(f"Cannot build {self.kind} '{name}':\n" + "\n".join(f"  - {p}" for p in problems))
        return self.get(name)(*args, **values)
