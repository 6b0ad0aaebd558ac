"""Files that survive a crash mid-write: atomic writes, checkpoints with a fallback, JSON lines.

Every file is written to a temporary name in the same folder, flushed and fsynced, then renamed over
the target (``os.replace`` is atomic on POSIX), so a reader sees the old file or the new one, never
half of one. ``save_checkpoint`` keeps the previous good checkpoint as ``prev.pt`` until the new
``last.pt`` is complete; ``load_checkpoint`` falls back to it when ``last.pt`` is truncated or corrupt.
JSON-lines files grow by fsynced appends, so a crash can only tear their last line, which
``read_jsonl`` skips. torch is imported by the functions that need it, so that reading a sweep's
results does not wait for it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

from podexp.errors import PodexpError, shell_path

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


def _synced_temp(path: Path, write: Callable[[BinaryIO], object]) -> str:
    """A fsynced temporary file next to ``path`` filled by ``write(handle)``; returns its name. It is
    created with mode 0666 minus the umask (0644 under umask 022), as ``open`` would create ``path``, so
    the renamed file is as readable as any other (``tempfile.mkstemp`` would make it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as err:
        os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:  # a write to a handle names no file
            err.filename = str(path)
        raise
    return tmp


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` by what ``write(handle)`` writes to a binary file handle, atomically
    (e.g. ``atomic_write(p, lambda f: np.savez(f, **arrays))``)."""
    path = Path(path)
    tmp = _synced_temp(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    atomic_write_bytes(text.encode(), path)


def atomic_write_json(obj, path: str | os.PathLike) -> None:
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    import torch

    atomic_write(path, lambda handle: torch.save(obj, handle))


def save_checkpoint(state: dict, folder: str | os.PathLike, name: str = "last.pt") -> Path:
    """Write ``state`` to ``folder/name``; the previous one is kept as ``prev.pt``.

    The new file is complete and fsynced under a temporary name before the two renames
    (last -> prev, tmp -> last), so at every instant one complete checkpoint exists.
    """
    import torch

    folder = Path(folder)
    target, previous = folder / name, folder / "prev.pt"
    tmp = _synced_temp(target, lambda handle: torch.save(state, handle))
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


# trainer.keep_checkpoints: what a finished run keeps besides model.pt (its weights, always written); the
# checkpoints each setting deletes once result.json is written (``prune_checkpoints``).
CHECKPOINTS_DROPPED_AT_END = {
    "last_and_model": ("prev.pt",),  # last.pt: the whole training state (optimisers, schedules, RNG)
    "all": (),
    "model_only": ("prev.pt", "last.pt"),
}


def prune_checkpoints(folder: str | os.PathLike, keep: str) -> None:
    """Delete the checkpoints of a finished run that ``trainer.keep_checkpoints=keep`` does not keep."""
    for name in CHECKPOINTS_DROPPED_AT_END[keep]:
        (Path(folder) / name).unlink(missing_ok=True)


def tensor_bytes(tree) -> int:
    """The bytes of the tensors in a nested dict/list (a checkpoint's size, give or take its pickle)."""
    if isinstance(tree, dict):
        return sum(tensor_bytes(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(tensor_bytes(v) for v in tree)
    nbytes = getattr(tree, "nbytes", None)
    return nbytes if isinstance(nbytes, int) else 0


def _try_load(path: Path):
    import torch

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
    tried = ", ".join(shell_path(c) for c in candidates)
    raise PodexpError(
        f"No readable checkpoint at {tried}. The file is missing, truncated or not a "
        f"podexp checkpoint. Point resume= at a good last.pt/prev.pt, or start afresh "
        f"with resume=null."
    )


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in ``path``; None (with a warning) when it is missing or unreadable, as a file
    cut short by a crash or an external copy can be."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("%s is unreadable; it is treated as absent.", path)
        return None


def append_line(line: str, path: str | os.PathLike) -> None:
    """Append one line and fsync it. A crash can only leave a partial *last* line, which
    ``read_jsonl`` skips."""
    with open(path, "a") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_jsonl(rows: list[dict], path: str | os.PathLike) -> None:
    """Replace ``path`` by one JSON line per row, atomically."""
    atomic_write_text("".join(json.dumps(row) + "\n" for row in rows), path)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The rows of a JSON-lines file (none when it is missing), skipping with a warning a torn line
    left by a crash."""
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
