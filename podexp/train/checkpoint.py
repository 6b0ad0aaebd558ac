"""Atomic files and checkpoints that survive a crash mid-write.

Every file is written to a temporary name in the same folder, flushed and fsynced, then renamed over
the target (``os.replace`` is atomic on POSIX). ``save_checkpoint`` keeps the previous good checkpoint
as ``prev.pt`` until the new ``last.pt`` is complete; ``load_checkpoint`` falls back to it when
``last.pt`` is truncated or corrupt.
"""
from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from pathlib import Path

import torch

from podexp.errors import PodexpError

log = logging.getLogger(__name__)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    atomic_write_bytes(text.encode(), path)


def atomic_write_json(obj, path: str | os.PathLike) -> None:
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def save_checkpoint(state: dict, folder: str | os.PathLike, name: str = "last.pt") -> Path:
    """Write ``state`` to ``folder/name``; the previous one is kept as ``prev.pt``."""
    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    target, previous = folder / name, folder / "prev.pt"
    if target.exists():
        os.replace(target, previous)
    atomic_write_bytes(buffer.getvalue(), target)
    return target


def _try_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, pickle garbage, ...
        log.warning("Checkpoint %s is unreadable (%s: %s).", path, err.__class__.__name__, err)
        return None


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, Path]:
    """Load ``path``; if it is ``last.pt`` and corrupt, fall back to ``prev.pt`` in the same folder."""
    path = Path(path)
    candidates = [path] + ([path.parent / "prev.pt"] if path.name == "last.pt" else [])
    for candidate in candidates:
        if candidate.exists():
            state = _try_load(candidate)
            if isinstance(state, dict) and "model" in state:
                if candidate != path:
                    log.warning("Falling back to the previous checkpoint %s.", candidate)
                return state, candidate
    tried = ", ".join(str(c) for c in candidates)
    raise PodexpError(f"No readable checkpoint at {tried}. The file is missing, truncated or not a "
                      f"podexp checkpoint. Point resume= at a good last.pt/prev.pt, or start afresh "
                      f"with resume=null.")
