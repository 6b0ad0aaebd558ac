"""User-facing errors: one paragraph that says what is wrong and how to fix it.

A path in a message is written with ``shell_path`` (shell-quoted), so a command copied from the message
works when the path holds spaces.
"""

import errno
import os
import shlex


class PodexpError(Exception):
    """An error caused by the user's input (config, data, checkpoint), not by a bug.

    The trainer prints ``str(err)`` without a traceback and exits with ``exit_code`` (2: bad input).
    """

    exit_code = 2


class ConfigError(PodexpError, ValueError):
    """The composed configuration is invalid; from the library (``build("pod", num_classes=1, ...)``) it is a
    ``ValueError`` like any bad argument."""


class DataError(PodexpError):
    """A dataset is missing, incomplete or unreadable."""


class StorageError(PodexpError):
    """The run folder cannot be written (permission denied, read-only, disk full): the machine's state,
    not the input, so the trainer exits with code 1."""

    exit_code = 1


# errno values of a folder that cannot be written, and what to do about each
STORAGE_ERRNOS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
}
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def storage_error(err: OSError, needed: str = "") -> StorageError | None:
    """The ``StorageError`` for an ``OSError`` of writing a file (None when ``err`` is another kind):
    one paragraph naming the path and the fix; ``needed`` says how much space the write needs."""
    if err.errno not in STORAGE_ERRNOS:
        return None
    where = shell_path(err.filename) if err.filename else "the run folder"
    if err.errno in FULL_ERRNOS:
        return StorageError(
            f"Cannot write {where}: {STORAGE_ERRNOS[err.errno]}.{needed} Files are written atomically, so the "
            f"previous last.pt (and prev.pt) are intact. Free space (or point hydra.run.dir / hydra.sweep.dir at "
            f"another disk) and run the same command again: resume=auto continues from the last checkpoint."
        )
    return StorageError(
        f"Cannot write {where}: {STORAGE_ERRNOS[err.errno]}. podexp writes every run into its output folder: "
        f"point hydra.run.dir (a sweep: hydra.sweep.dir) at a folder you can write, or fix the folder's "
        f"permissions."
    )


def unknown_name(kind: str, name: str, valid) -> ConfigError:
    """The error for ``kind=name`` where ``name`` is not one of ``valid``."""
    options = ", ".join(sorted(valid))
    return ConfigError(
        f"Unknown {kind} '{name}'. Valid {kind} names: {options}. "
        f"Pick one of them on the command line, e.g. `{kind}={sorted(valid)[0]}`."
    )


def shell_path(path: str | os.PathLike) -> str:
    """``path`` quoted for a POSIX shell (unchanged when it needs no quotes)."""
    return shlex.quote(str(path))
