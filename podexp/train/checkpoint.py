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


def _write_synced_tmp(data: bytes, path: Path) -> str:
    """``data`` in a fsynced temporary file next to ``path``; returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = _write_synced_tmp(data, path)
    try:
        os.replace(tmp, path)
    except BaseException:
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
    """Write ``state`` to ``folder/name``; the previous one is kept as ``prev.pt``.

    The new file is complete and fsynced under a temporary name before the two renames
    (last -> prev, tmp -> last), so at every instant one complete checkpoint exists.
    """
    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    target, previous = folder / name, folder / "prev.pt"
    tmp = _write_synced_tmp(buffer.getvalue(), target)
    try:
        if target.exists():
            os.replace(target, previous)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
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


def append_line(line: str, path: str | os.PathLike) -> None:
    """Append one line and fsync it. A crash can only leave a partial *last* line, which
    ``read_jsonl`` skips."""
    with open(path, "a") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The rows of a JSON-lines file, skipping (with a warning) a torn line left by a crash."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("Skipping unreadable line %d of %s (a write cut short by a crash).", number, path)
    return rows
