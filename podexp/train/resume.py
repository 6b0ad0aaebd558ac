"""Continue a run exactly where it stopped (``resume=auto|null|PATH``).

``auto`` looks for ``last.pt`` (falling back to ``prev.pt``) in the run's own folder: a new run folder
holds none, so a fresh run starts from scratch, while a requeued cluster job or a command re-run with
the same ``hydra.run.dir``/``hydra.sweep.dir`` continues. A folder whose ``result.json`` exists is
finished: the same config gets its result without training again, a raised ``trainer.epochs`` continues
it, any other config is refused (``finished_result``). ``resume_allow_changes=true`` applies changed
hyper-parameters to the loaded optimisers and schedules and refuses the changes a checkpoint fixes.
``PATH`` resumes from that checkpoint file or run folder; ``null`` always starts afresh. Resuming from
another run's folder copies its metrics rows of the epochs already done, so the new
folder's ``metrics.jsonl`` is complete.

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
from podexp.keys import is_fixed_by_checkpoint, is_result_neutral
from podexp.settings import explicit_checkpoint, resume_problem

log = logging.getLogger(__name__)
MISSING = object()  # a key absent from one of two configs


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


def config_changes(saved: dict, current: dict) -> list[tuple[str, object, object]]:
    """``(key, saved value, current value)`` for every hashed key that differs (``MISSING``: absent)."""
    old, new = _hashed(saved), _hashed(current)
    return [
        (key, old.get(key, MISSING), new.get(key, MISSING))
        for key in sorted(set(old) | set(new))
        if old.get(key, MISSING) != new.get(key, MISSING)
    ]


def describe_changes(changes) -> str:
    """``key: saved -> current; ...`` (the first 20)."""

    def fmt(value):
        return "(absent)" if value is MISSING else json.dumps(value, default=str)

    lines = [f"{key}: {fmt(a)} -> {fmt(b)}" for key, a, b in changes]
    return "; ".join(lines[:20]) + (f"; ... ({len(lines) - 20} more)" if len(lines) > 20 else "")


def only_more_epochs(changes) -> bool:
    """Whether the one change is a raised ``trainer.epochs``: the run goes on where it stopped."""
    if [key for key, _, _ in changes] != ["trainer.epochs"]:
        return False
    ((_, old, new),) = changes
    return isinstance(old, int) and isinstance(new, int) and new > old


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


def finished_result(out_dir: Path, resolved: dict, allow_changes: bool) -> dict | None:
    """The stored result when ``out_dir`` holds a finished run of this very config (``resume=auto``).

    None when there is no finished run, or when this config continues it: ``trainer.epochs`` raised (any
    other change too with ``resume_allow_changes=true``), so training goes on from its ``last.pt``. Any
    other difference is refused with the list of changes, as for an unfinished run: a folder's result
    never answers for another config.
    """
    result = read_json(out_dir / "result.json")
    if result is None:
        return None
    changes = config_changes(result.get("config") or {}, resolved)
    if not changes:
        return result
    epochs = [change for change in changes if change[0] == "trainer.epochs"]
    if only_more_epochs(epochs) and (len(changes) == 1 or allow_changes):
        ((_, done_epochs, new_epochs),) = epochs
        if checkpoint_to_resume("auto", out_dir) is None:
            raise ConfigError(
                f"{out_dir} holds a run finished after {done_epochs} epochs but no last.pt to continue it "
                f"from (it ran with trainer.checkpoint=false, or its checkpoints were deleted). Train in a new "
                f"folder (leave out hydra.run.dir), or retrain here from scratch with resume=null."
            )
        log.info("%s holds a finished run; continuing it to trainer.epochs=%d.", out_dir, new_epochs)
        return None
    raise ConfigError(
        f"{out_dir} already holds a finished run (result.json) of a different config "
        f"({describe_changes(changes)}). Its result does not answer for this one. Train in a new folder "
        f"(leave out hydra.run.dir / hydra.sweep.dir), retrain here from scratch with resume=null, or raise "
        f"only trainer.epochs to continue the finished run."
    )


def load_for_resume(path: Path, resolved: dict, allow_changes: bool) -> dict:
    """Load the checkpoint at ``path`` and refuse it when it was written by another config.

    A raised ``trainer.epochs`` alone continues the run. Other changes need ``allow_changes``, and even
    then the keys a checkpoint fixes (``podexp.keys.FIXED_BY_CHECKPOINT``: seed, backbone, dataset, the
    loss's kind and PEDCC, ...) are refused; ``state["changed"]`` lists the applied keys, which
    ``apply_optimizer_settings`` carries into the loaded optimisers and schedules.
    """
    state, used = load_checkpoint(path)
    saved = state.get("config") or {}
    changes = config_changes(saved, resolved) if state.get("config_hash") != config_hash(resolved) else []
    if changes and not allow_changes and not only_more_epochs(changes):
        raise ConfigError(
            f"The checkpoint {used} was written by a different config ({describe_changes(changes)}). Run "
            f"with the checkpoint's settings, add resume_allow_changes=true to resume "
            f"anyway (the run is then no longer an exact continuation), or "
            f"resume=null to start afresh."
        )
    fixed = [change for change in changes if is_fixed_by_checkpoint(change[0])]
    if fixed:
        raise ConfigError(
            f"The checkpoint {used} cannot be resumed with these changes, even with "
            f"resume_allow_changes=true: {describe_changes(fixed)}. Its tensors and random-number states "
            f"were made by the old values (the seed, the network, the data, the loss's kind and centres, the "
            f"optimiser's kind), so the run would not be what the config says. Resume with the checkpoint's "
            f"values of these keys, or start afresh in a new folder (or with resume=null)."
        )
    if changes:
        log.warning("Resuming %s with a changed config, applied from here on: %s", used, describe_changes(changes))
    state["changed"] = [key for key, _, _ in changes]
    log.info(
        "Resuming from %s: epoch %d, step %d of the epoch.", used, state["epoch"] + 1, state.get("step_in_epoch", 0)
    )
    return state


def optimizer_settings(optimizers, schedulers) -> list[tuple[list[dict], list[float]]]:
    """What the current config sets in freshly built optimisers and schedules: every param group's
    hyper-parameters (lr, momentum, weight decay, ...) and the schedules' base lrs; taken before
    ``Trainer.load_state_dict`` overwrites them with the checkpoint's."""
    return [
        ([{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups], list(sched.base_lrs))
        for opt, sched in zip(optimizers, schedulers)
    ]


def apply_optimizer_settings(settings, optimizers, schedulers) -> None:
    """Put the config's hyper-parameters (``optimizer_settings``) into the loaded optimisers and schedules,
    keeping their state (momentum buffers, step counts): each group's lr becomes the new base lr times the
    schedule's factor at the loaded step, as if the run had been started with them."""
    for (groups, base_lrs), opt, sched in zip(settings, optimizers, schedulers):
        for group, fresh in zip(opt.param_groups, groups):
            group.update({k: v for k, v in fresh.items() if k != "lr"})
        sched.base_lrs = list(base_lrs)
        for group, base, factor in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas):
            lr = base * factor(sched.last_epoch)
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        sched._last_lr = [float(group["lr"]) for group in opt.param_groups]


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
