"""One run per folder: an exclusive lock file ``run.lock`` in the run folder.

Two processes training into one folder would write every epoch row twice, or interleave two seeds and
overwrite one seed's ``result.json``. The first run creates ``run.lock`` with ``O_CREAT | O_EXCL`` (atomic:
exactly one creator wins) and writes who holds it: PID, host, SLURM job id, start time and command. A
second run finds the file and stops with a message naming the holder. The holder deletes the file when
it ends, however it ends short of being killed.

A lock left by a killed process is *stale*. It is taken over, with a warning, when the holder is provably
gone: on this host its PID no longer exists, or it belongs to this very SLURM job (a requeued job runs
again under its old job id, after its first run ended). A lock from another host is never taken over
by guess; the message says to delete it once that process is gone.

Shared filesystems: ``O_EXCL`` creation is atomic on local filesystems, on NFSv3/v4 with Linux clients
(kernel >= 2.6.5), Lustre, GPFS and BeeGFS; on NFSv2 or filesystems without atomic exclusive create two
runs could both win, so keep run folders on one of the former (docs/reliability.md).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path

from podexp.errors import PodexpError

log = logging.getLogger(__name__)
LOCK_NAME = "run.lock"


class RunFolderBusy(PodexpError):
    """Another run holds this run folder. The folder is that run's: nothing is written into it."""

    leaves_folder_alone = True


def _holder_alive(holder: dict) -> bool:
    """Whether the process that wrote ``holder`` may still run (True when this cannot be ruled out)."""
    job = os.environ.get("SLURM_JOB_ID")
    if job and holder.get("slurm_job_id") == job and holder.get("pid") != os.getpid():
        return False  # a requeued job: its earlier run has ended
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class RunLock:
    """``with RunLock(folder):`` holds ``folder/run.lock`` for the block, or raises ``RunFolderBusy``."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.token = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(sys.argv),
            "nonce": uuid.uuid4().hex,
        }

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(self.token, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _holder(self) -> tuple[dict, str]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}, ""
        try:
            holder = json.loads(text)
        except ValueError:  # torn by a crash between create and write
            holder = {}
        return (holder if isinstance(holder, dict) else {}), text

    def acquire(self) -> None:
        for _ in range(3):  # a holder may finish between our tries
            if self._create():
                return
            holder, text = self._holder()
            if not holder:  # being written by its creator this instant, or torn by a crash
                time.sleep(0.2)
                holder, text = self._holder()
            if not text and not self.path.exists():
                continue
            if holder and _holder_alive(holder):
                raise RunFolderBusy(self._busy_message(holder))
            if self._holder()[1] != text:  # changed hands meanwhile: look again
                continue
            log.warning("Taking over the stale lock %s of a process that is gone (%s).", self.path, self._who(holder))
            self.path.unlink(missing_ok=True)
        raise RunFolderBusy(self._busy_message(self._holder()[0]))

    def release(self) -> None:
        holder, _ = self._holder()
        if holder.get("nonce") == self.token["nonce"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @staticmethod
    def _who(holder: dict) -> str:
        if not holder:
            return "an unreadable lock file"
        return f"PID {holder.get('pid')} on host {holder.get('host')}, since {holder.get('started')}"

    def _busy_message(self, holder: dict) -> str:
        folder = self.path.parent
        return (
            f"The run folder '{folder}' is in use by another podexp run ({self._who(holder)}; lock file "
            f"'{self.path}'). Two runs in one folder would write each other's rows and results. Wait for "
            f"that run to end, give this run its own folder (another hydra.run.dir / hydra.sweep.dir), or, "
            f"if that process is gone (e.g. its node crashed), delete '{self.path}' and run again."
        )
