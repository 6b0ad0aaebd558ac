"""Continue a run exactly where it stopped (``resume=auto|null|PATH``).

``auto`` looks for ``last.pt`` (falling back to ``prev.pt``) in the run's own folder: a new run folder
holds none, so a fresh run starts from scratch, while a requeued cluster job or a command re-run with
the same ``hydra.run.dir``/``hydra.sweep.dir`` continues. A folder whose ``result.json`` exists is
finished and is not trained again. ``PATH`` resumes from that checkpoint file or run folder; ``null``
always starts afresh. Resuming from another run's folder copies its metrics rows of the epochs
already done, so the new folder's ``metrics.jsonl`` is complete.

A checkpoint is the whole state that decides the rest of the run (see ``Trainer.state_dict``): model,
loss buffers/parameters, optimisers, schedules, epoch and step within the epoch, the partial epoch
metrics, best accuracy, the RNG states below, the W&B run id and the config hash. The data order and
augmentation are drawn from generators seeded by (seed, epoch, step) in ``TensorLoader``, so they need
no saved state of their own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch

from podexp.errors import ConfigError, shell_path
from podexp.io import load_checkpoint, read_json, read_jsonl, write_jsonl
from podexp.keys import is_result_neutral
from podexp.settings import explicit_checkpoint, resume_problem

log = logging.getLogger(__name__)


def _flatten(tree, prefix="") -> dict:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _hashed(resolved: dict) -> dict:
    flat = _flatten(resolved)
    return {k: v for k, v in flat.items() if not is_result_neutral(k)}


def config_hash(resolved: dict) -> str:
    """SHA-256 (16 hex digits) of the resolved config minus the result-neutral keys (``podexp.keys``):
    a resumed run may differ in those freely."""
    text = json.dumps(_hashed(resolved), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_diff(saved: dict, current: dict) -> list[str]:
    """``key: saved -> current`` for every hashed key that differs."""
    old, new = _hashed(saved), _hashed(current)
    missing = object()
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            fmt = lambda v: "(absent)" if v is missing else json.dumps(v, default=str)  # noqa: E731
            lines.append(f"{key}: {fmt(a)} -> {fmt(b)}")
    return lines


def checkpoint_to_resume(setting, out_dir: Path) -> Path | None:
    """The checkpoint file ``resume=setting`` points at, or None to start afresh."""
    if setting in (None, "", "null", "none", False):
        return None
    if setting == "auto":
        for name in ("last.pt", "prev.pt"):
            if (out_dir / name).exists():
                return out_dir / "last.pt"
        return None
    problem = resume_problem(setting)
    if problem:
        raise ConfigError(problem)
    return explicit_checkpoint(setting)


def finished_result(out_dir: Path) -> dict | None:
    """The stored result of a run that already completed in ``out_dir``."""
    return read_json(out_dir / "result.json")


def load_for_resume(path: Path, resolved: dict, allow_changes: bool) -> dict:
    """Load the checkpoint at ``path`` and refuse it when it was written by another config."""
    state, used = load_checkpoint(path)
    saved = state.get("config") or {}
    if state.get("config_hash") != config_hash(resolved):
        diff = config_diff(saved, resolved)
        if diff and not allow_changes:
            shown = "; ".join(diff[:20]) + (f"; ... ({len(diff) - 20} more)" if len(diff) > 20 else "")
            raise ConfigError(
                f"The checkpoint {used} was written by a different config ({shown}). Run "
                f"with the checkpoint's settings, add resume_allow_changes=true to resume "
                f"anyway (the run is then no longer an exact continuation), or "
                f"resume=null to start afresh."
            )
        if diff:
            log.warning("Resuming %s with a changed config: %s", used, "; ".join(diff))
    log.info(
        "Resuming from %s: epoch %d, step %d of the epoch.", used, state["epoch"] + 1, state.get("step_in_epoch", 0)
    )
    return state


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    if "python" in state:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resume_state(cfg, resolved: dict, out_dir: Path, is_main: bool) -> dict | None:
    """The checkpoint ``cfg.resume`` points at, checked against this config, for
    ``Trainer.load_state_dict`` (None: start afresh). Resuming from another run's folder copies that
    run's metrics rows of the epochs already done into ``out_dir`` (by rank 0)."""
    path = checkpoint_to_resume(cfg.get("resume"), out_dir)
    if path is None:
        return None
    state = load_for_resume(path, resolved, bool(cfg.resume_allow_changes))
    source = path.parent / "metrics.jsonl"
    target = out_dir / "metrics.jsonl"
    if is_main and source.exists() and not target.exists():  # resume=PATH from another run
        rows = [r for r in read_jsonl(source) if r["epoch"] < state["epoch"]]
        write_jsonl(rows, target)
    return state


def preemption_message(out_dir: Path, saved: bool, epoch: int, step: int, reason: str = "Preempted") -> str:
    """What a stopped run says (``reason``: Preempted, or Interrupted for Ctrl-C); paths shell-quoted."""
    where = (
        f"A checkpoint after step {step} of epoch {epoch + 1} is in {shell_path(out_dir / 'last.pt')}."
        if saved
        else "No checkpoint was written (trainer.checkpoint=false)."
    )
    return (
        f"{reason}: {where} To continue, run the same command again with "
        f"hydra.run.dir={shell_path(out_dir)} (a multirun: hydra.sweep.dir=<the sweep folder>) and resume=auto, "
        f"or with resume={shell_path(out_dir / 'last.pt')}; a requeued cluster job continues by itself."
    )


def _shape_problems(saved: dict, current: dict, what: str) -> list[str]:
    """The tensors of the state dict ``saved`` that ``current`` lacks, adds, or holds in another shape."""
    problems = []
    for key in sorted(set(saved) | set(current)):
        old, new = getattr(saved.get(key), "shape", None), getattr(current.get(key), "shape", None)
        if key not in current:
            problems.append(f"{what}.{key} is in the checkpoint but not in this run")
        elif key not in saved:
            problems.append(f"{what}.{key} is new in this run")
        elif old is not None and new is not None and tuple(old) != tuple(new):
            problems.append(f"{what}.{key} is {tuple(old)} in the checkpoint, {tuple(new)} now")
    return problems


def check_fits(state: dict, model: torch.nn.Module, loss: torch.nn.Module, resolved: dict) -> None:
    """Refuse (``ConfigError``, before anything is written) a checkpoint whose model or loss tensors do not
    fit the ones this config builds: ``resume_allow_changes=true`` accepts changes of training settings,
    not of a shape (``dataset.latent_dim``, ``dataset.num_classes``, the backbone, the loss)."""
    problems = _shape_problems(state["model"], model.state_dict(), "model")
    problems += _shape_problems(state["loss"], loss.state_dict(), "loss")
    if not problems:
        return
    changes = config_diff(state.get("config") or {}, resolved)
    shown = "; ".join(problems[:5]) + (f"; ... ({len(problems) - 5} more)" if len(problems) > 5 else "")
    raise ConfigError(
        f"The checkpoint cannot resume this run: its tensors do not fit the model and loss this config builds "
        f"({shown}). Of the changed settings ({'; '.join(changes) or 'none'}), those that change a weight's "
        f"shape or the set of weights (dataset.latent_dim, dataset.num_classes, backbone.*, loss.name, ...) "
        f"cannot resume, even with resume_allow_changes=true. Undo them, or start afresh with resume=null "
        f"(or in a new folder)."
    )
