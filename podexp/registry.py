"""One registry kind for every pluggable part: losses, backbones, datasets, optimisers, schedules,
analysis measures and figures (in the spirit of timm's ``create_model``).

A registered callable's keyword parameters are its options. Their annotations say what a value may
be, and the validator (``podexp.validate``) reads nothing else:

* a plain type: ``float`` (finite), ``int``, ``bool``, ``str``, ``list``, ``dict``;
* ``Literal["a", "b"]`` for a fixed set of choices (``bool | Literal["auto"]``: false, true or auto);
* ``Annotated[float, Range(gt=0)]`` for a bounded number, ``Annotated[str, Pattern(...)]`` for a string
  of a given form, ``Annotated[list, Items(int, Range(ge=0), increasing=True)]`` for a list whose items
  are bounded numbers (optionally strictly increasing, optionally of a fixed ``length``);
* ``X | None`` where ``null`` is allowed.

Defaults have one home, the config files: when a registry names a config group, ``build(name)`` fills
every option the caller leaves out from ``configs/<group>/<name>.yaml`` (``podexp.defaults``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

from podexp.errors import ConfigError

EMPTY = inspect.Parameter.empty
KIND_WORDS = {
    float: "a number",
    int: "an integer",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``Range(gt=0)`` is > 0, ``Range(ge=0, lt=1)`` is in [0, 1)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def contains(self, value: float) -> bool:
        return (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.lt is None or value < self.lt)
            and (self.le is None or value <= self.le)
        )

    def describe(self) -> str:
        low = f"> {self.gt}" if self.gt is not None else f">= {self.ge}" if self.ge is not None else ""
        high = f"< {self.lt}" if self.lt is not None else f"<= {self.le}" if self.le is not None else ""
        return " and ".join(b for b in (low, high) if b)


PositiveFloat = typing.Annotated[float, Range(gt=0)]
NonNegativeFloat = typing.Annotated[float, Range(ge=0)]
PositiveInt = typing.Annotated[int, Range(ge=1)]
NonNegativeInt = typing.Annotated[int, Range(ge=0)]


@dataclass(frozen=True)
class Pattern:
    """A string matching ``regex`` in full; ``meaning`` says it in words (``Annotated[str, Pattern(...)]``)."""

    regex: str
    meaning: str


@dataclass(frozen=True)
class Items:
    """What every item of a list must be: ``kind`` (int or float) within ``range``; ``increasing``: each
    item larger than the one before; ``length``: exactly that many items."""

    kind: type
    range: Range | None = None
    increasing: bool = False
    length: int | None = None

    def describe(self) -> str:
        what = "integers" if self.kind is int else "numbers"
        bounds = f" {self.range.describe()}" if self.range is not None else ""
        count = f"{self.length} " if self.length is not None else ""
        order = ", each larger than the one before" if self.increasing else ""
        return f"a list of {count}{what}{bounds}{order}"

    def problem(self, key: str, value) -> str | None:
        """What is wrong with the list ``value`` (already known to be a list), or None."""
        items = list(value)
        if self.length is not None and len(items) != self.length:
            return f"{key}={items}: must be {self.describe()}."
        for item in items:
            if not is_kind(item, self.kind) or not math.isfinite(item):
                return f"{key}={items}: {item!r} is not {KIND_WORDS[self.kind]}; must be {self.describe()}."
            if self.range is not None and not self.range.contains(item):
                return f"{key}={items}: {item} is not {self.range.describe()}; must be {self.describe()}."
        if self.increasing and any(b <= a for a, b in zip(items, items[1:])):
            return f"{key}={items}: must be {self.describe()} (sort them, drop repeats)."
        return None


def yaml_text(value) -> str:
    """``value`` as it is written in a config file or on the command line (true, false, null)."""
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def one_of(values: Iterable) -> str:
    """``a, b or c``."""
    words = [yaml_text(v) for v in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


@dataclass(frozen=True)
class Option:
    """One keyword a registered callable accepts: what its values may be, and its Python default."""

    name: str
    kind: type | None  # float, int, bool, str, list, dict; None: anything
    choices: tuple | None = None  # Literal[...] values (bool | Literal[...]: false, true and those)
    range: Range | None = None
    nullable: bool = False
    default: Any = EMPTY
    pattern: Pattern | None = None
    items: Items | None = None

    def describe(self) -> str:
        if self.choices is not None:
            text = one_of(self.choices)
        elif self.pattern is not None:
            text = self.pattern.meaning
        elif self.items is not None:
            text = self.items.describe()
        else:
            text = KIND_WORDS.get(self.kind, "any value")
            if self.range is not None:
                text += f" {self.range.describe()}"
        return text + (" or null" if self.nullable else "")

    def problem(self, key: str, value) -> str | None:
        """What is wrong with ``key=value`` for this option, or None."""
        if value is None:
            return (
                None
                if self.nullable or self.kind is None and self.choices is None
                else f"{key}=null: must be {self.describe()}."
            )
        if self.choices is not None:
            return None if _is_choice(value, self.choices) else f"{key}={yaml_text(value)}: use {self.describe()}."
        if not is_kind(value, self.kind):
            return f"{key}={value!r}: must be {self.describe()}."
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if not math.isfinite(value):
                return f"{key}={value}: must be a finite number."
            if self.range is not None and not self.range.contains(value):
                return f"{key}={value}: must be {self.range.describe()}."
        if self.pattern is not None and not re.fullmatch(self.pattern.regex, value):
            return f"{key}={value}: use {self.pattern.meaning}."
        if self.items is not None:
            return self.items.problem(key, value)
        return None


def _is_choice(value, choices: tuple) -> bool:
    """``value`` is one of ``choices``, bools only matching bools (so 0 is not false)."""
    return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices)


def is_kind(value, kind) -> bool:
    """``value`` is of ``kind`` (float, int, bool, str, list, dict; OmegaConf containers count; None: any)."""
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


def _choices(members) -> tuple | None:
    """The values a union of ``bool`` and ``Literal[...]`` members allows (None: another type is in it)."""
    values: list = []
    for member in members:
        if member is bool:
            values += [False, True]
        elif typing.get_origin(member) is Literal:
            values += typing.get_args(member)
        else:
            return None
    return tuple(values)


def option_from_annotation(name: str, annotation, default=EMPTY) -> Option:
    """The ``Option`` an annotation (already evaluated) describes."""
    extras: list = []
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        if len(members) == 1:
            option = option_from_annotation(name, members[0], default)
            option = dataclasses.replace(option, nullable=nullable or option.nullable)
        else:
            option = Option(name, None, _choices(members), None, nullable, default)
    elif typing.get_origin(annotation) is Literal:
        option = Option(name, None, tuple(typing.get_args(annotation)), default=default)
    else:
        origin = typing.get_origin(annotation) or annotation
        kind = {list: list, tuple: list, dict: dict}.get(origin, origin)
        option = Option(name, kind if kind in KIND_WORDS else None, default=default)
    bounds = next((e for e in extras if isinstance(e, Range)), option.range)
    pattern = next((e for e in extras if isinstance(e, Pattern)), option.pattern)
    items = next((e for e in extras if isinstance(e, Items)), option.items)
    return dataclasses.replace(option, range=bounds, pattern=pattern, items=items)


def _parameters(fn: Callable) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


def options_of(fn: Callable, skip: Iterable[str] = ()) -> dict[str, Option]:
    """The keyword options of ``fn`` (a function, a ``functools.partial`` of one, or a class's
    ``__init__``, e.g. a dataclass's fields), minus ``skip``."""
    target = fn.func if isinstance(fn, functools.partial) else fn.__init__ if inspect.isclass(fn) else fn
    hints = typing.get_type_hints(target, include_extras=True)
    skipped = {"self", *skip}
    return {
        name: option_from_annotation(name, hints.get(name, Any), p.default)
        for name, p in _parameters(fn).items()
        if name not in skipped and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def problems_with(
    options: Mapping[str, Option], given: Mapping, prefix: str, owner: str, ignore: Iterable[str] = ()
) -> list[str]:
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


def raise_problems(headline: str, problems: Iterable[str | None]) -> None:
    """One ``ConfigError``: ``headline`` and one line per problem (nothing when there is none)."""
    found = [p for p in problems if p]
    if found:
        raise ConfigError(headline + "\n" + "\n".join(f"  - {p}" for p in found))


def argument_problems(fn: Callable, *args, **kwargs) -> list[str]:
    """The problems of calling ``fn(*args, **kwargs)``, by ``fn``'s annotations (unknown keywords too)."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except TypeError as err:
        return [str(err)]
    options = options_of(fn)
    problems = [options[k].problem(k, v) for k, v in bound.items() if k in options]
    return [p for p in problems if p]


class Registry:
    """Name -> callable, for one ``kind`` of part.

    ``context`` names the parameters the framework passes itself (a loss's ``num_classes`` and
    ``latent_dim``), which are not options a user sets; their annotations are checked all the same.
    ``config_group`` is the config folder whose ``<name>.yaml`` holds the defaults of ``build(name)``.
    ``shared`` (a dataclass or function) declares options every entry accepts that the caller reads
    rather than the entry (a dataset's ``batch_size``); ``build`` passes an entry only its own.
    ``register(name, **attributes)`` stores facts about an entry (``streamed=True``) for ``attributes``.
    """

    def __init__(
        self,
        kind: str,
        *,
        context: tuple[str, ...] = (),
        config_group: str | None = None,
        shared: Callable | None = None,
    ):
        self.kind, self.context, self.config_group, self.shared = kind, tuple(context), config_group, shared
        self._entries: dict[str, Callable] = {}
        self._attributes: dict[str, dict] = {}

    def register(self, name: str, **attributes):
        """Decorator: ``@LOSSES.register("pod")``."""

        def wrap(fn):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = fn
            self._attributes[name] = attributes
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

    def attributes(self, name: str) -> dict:
        """The facts ``name`` was registered with (``{}`` for none)."""
        self.get(name)
        return self._attributes[name]

    def signature(self, name: str) -> dict[str, Option]:
        """The options ``name`` accepts: its keyword parameters minus the context, and the shared ones (an
        entry's own declaration of a shared option is the one that counts)."""
        shared = options_of(self.shared) if self.shared is not None else {}
        return {**shared, **options_of(self.get(name), self.context)}

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

    def resolve(self, name: str, options: Mapping, context_problems: Iterable[str | None] = ()) -> dict:
        """Every option value of ``name``: the config file's defaults overridden by ``options``, then the
        Python defaults of options still unset. Raises one ``ConfigError`` listing every problem (with
        ``context_problems``)."""
        values = {**self.defaults(name), **options}
        problems = [*context_problems, *self.problems(name, values, f"{self.config_group or self.kind}.")]
        raise_problems(f"Cannot build {self.kind} '{name}':", problems)
        unset = {k: o.default for k, o in self.signature(name).items() if k not in values and o.default is not EMPTY}
        return {**values, **unset}

    def build(self, name: str, *args, **options):
        """Call ``name`` with the context (``args``, or context names as keywords) and its options (see
        ``resolve``); the context values are checked against the entry's annotations too."""
        fn = self.get(name)
        context = {k: options.pop(k) for k in list(options) if k in self.context}
        values = self.resolve(name, options, argument_problems(fn, *args, **context))
        values = {k: v for k, v in values.items() if k not in self.context}  # a shared field named like one
        parameters = _parameters(fn)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            values = {k: v for k, v in values.items() if k in parameters}
        return fn(*args, **context, **values)
