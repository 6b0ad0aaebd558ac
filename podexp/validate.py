"""Check a composed config before anything is built or read, and report every problem at once.

``validate_config(cfg)`` raises one ``ConfigError`` whose message lists each problem on its own
line with what to change. It checks names against the registries, sizes, types, the loss's
hyper-parameters, the PEDCC geometry, the dataset folder and the ``resume`` target.
"""
from __future__ import annotations

import inspect
import numbers
from pathlib import Path

from omegaconf import OmegaConf

from podexp.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
ON_NAN = ("stop", "skip")


def _names(kind: str, name, valid) -> str | None:
    if name in valid:
        return None
    return (f"{kind}={name}: unknown {kind}. Valid: {', '.join(sorted(valid))}. "
            f"Pick one, e.g. {kind}={sorted(valid)[0]}.")


def _number(key: str, value, *, integer: bool, minimum=None, strict=False) -> str | None:
    """A problem if ``value`` is not a number (an integer when asked) at least/above ``minimum``."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
    if not ok_type:
        return f"{key}={value!r}: must be {kind}. Set e.g. {key}={minimum if minimum is not None else 0}."
    if minimum is not None and (value <= minimum if strict else value < minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        return f"{key}={value}: must be {bound}. Change {key}."
    return None


def _loss_problems(cfg) -> list[str]:
    from podexp.losses import available, hyperparameters

    name = cfg.loss.name
    if name not in available():
        return [_names("loss", name, available())]
    accepted = hyperparameters(name)
    given = {k: v for k, v in cfg.loss.items() if k != "name"}
    problems = []
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        problems.append(f"loss '{name}' has no hyper-parameter(s) {', '.join(unknown)}. It accepts: "
                        f"{', '.join(f'{k} (default {v})' for k, v in accepted.items()) or 'none'}. "
                        f"Remove or rename loss.{unknown[0]}.")
    for key, value in given.items():
        default = accepted.get(key, inspect.Parameter.empty)
        if isinstance(default, numbers.Real) and not isinstance(default, bool):
            problem = _number(f"loss.{key}", value, integer=False)
            if problem:
                problems.append(problem)
    method = given.get("pedcc_method")
    k, d = cfg.dataset.num_classes, cfg.dataset.latent_dim
    if method == "simplex" and isinstance(k, int) and isinstance(d, int) and k > d + 1:
        problems.append(f"loss.pedcc_method=simplex needs num_classes <= latent_dim + 1, but K={k} > "
                        f"d+1={d + 1}. Raise dataset.latent_dim to at least {k - 1} or use "
                        f"loss.pedcc_method=auto (iterative PEDCC when K > d+1).")
    return problems


def _dataset_problems(ds) -> list[str]:
    from podexp.data import READERS, STREAMED

    problems = [_names("dataset", ds.name, {**READERS, **STREAMED}),
                _number("dataset.batch_size", ds.batch_size, integer=True, minimum=1),
                _number("dataset.latent_dim", ds.latent_dim, integer=True, minimum=1),
                _number("dataset.num_classes", ds.num_classes, integer=True, minimum=2),
                _number("dataset.image_size", ds.image_size, integer=True, minimum=1),
                _number("dataset.channels", ds.channels, integer=True, minimum=1)]
    channels = ds.channels if isinstance(ds.channels, int) else None
    for key in ("mean", "std"):
        values = ds.get(key)
        if channels and (not OmegaConf.is_list(values) or len(values) != channels):
            problems.append(f"dataset.{key}={values}: needs one value per channel ({channels}).")
    if OmegaConf.is_list(ds.get("std")) and any(not isinstance(s, numbers.Real) or s <= 0 for s in ds.std):
        problems.append(f"dataset.std={list(ds.std)}: every value must be a positive number.")
    root = ds.get("root")
    if root is not None and not ds.get("download", False) and not Path(str(root)).expanduser().is_dir():
        fix = (", or set dataset.download=true" if "download" in ds
               else " (docs/datasets.md says how to get them)")
        problems.append(f"dataset.root={root}: the folder does not exist"
                        f"{' and dataset.download=false' if 'download' in ds else ''}. Point dataset.root "
                        f"(or $PODEXP_DATA) at the folder holding the {ds.name} files{fix}.")
    return problems


def _training_problems(cfg) -> list[str]:
    from podexp.models import BACKBONES
    from podexp.train.distributed import compile_mode
    from podexp.train.optim import OPTIMIZERS, SCHEDULES

    tr = cfg.trainer
    problems = [_names("backbone", cfg.backbone.name, BACKBONES),
                _names("optim", cfg.optim.name, OPTIMIZERS),
                _names("sched", cfg.sched.name, SCHEDULES),
                _number("optim.lr", cfg.optim.lr, integer=False, minimum=0, strict=True),
                _number("trainer.epochs", tr.epochs, integer=True, minimum=1),
                _number("seed", cfg.seed, integer=True)]
    for key in ("momentum", "weight_decay"):
        if key in cfg.optim:
            problems.append(_number(f"optim.{key}", cfg.optim[key], integer=False, minimum=0))
    if cfg.backbone.name in BACKBONES:
        parameters = inspect.signature(BACKBONES[cfg.backbone.name]).parameters
        open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())   # **options: anything goes
        accepted = set(parameters) - {"in_channels", "stem"}
        unknown = sorted(set(cfg.backbone) - accepted - {"name"})
        if unknown and not open_ended:
            problems.append(f"backbone '{cfg.backbone.name}' has no option(s) {', '.join(unknown)}. "
                            f"It accepts: {', '.join(sorted(accepted)) or 'none'}.")
    device = str(tr.device)
    if device.split(":")[0] not in DEVICES or (":" in device and not device.split(":")[1].isdigit()):
        problems.append(f"trainer.device={device}: use auto, cpu, cuda or cuda:N.")
    on_nan = tr.get("on_nan", "stop")
    if on_nan not in ON_NAN:
        problems.append(f"trainer.on_nan={on_nan}: use stop or skip.")
    problems.append(_number("trainer.nan_check_every", tr.get("nan_check_every", 1), integer=True,
                            minimum=1))
    problems.append(_number("trainer.preempt_check_every", tr.preempt_check_every, integer=True, minimum=1))
    try:
        compile_mode(tr.get("compile", False))
    except ConfigError as err:
        problems.append(str(err))
    return problems


def validate_config(cfg) -> None:
    """Raise one ``ConfigError`` listing every problem in ``cfg`` (nothing is read or built)."""
    problems = _dataset_problems(cfg.dataset) + _training_problems(cfg) + _loss_problems(cfg)
    resume = cfg.get("resume")
    if resume not in (None, "auto") and not Path(str(resume)).expanduser().exists():
        problems.append(f"resume={resume}: no such checkpoint file or run folder. Use resume=auto, "
                        f"resume=null or the path of a last.pt / run folder.")
    problems = [p for p in problems if p]
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"The configuration has {len(problems)} problem(s):\n{listing}")
