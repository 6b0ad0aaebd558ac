"""Hydra callbacks (listed in ``configs/hydra/default.yaml``) for what happens outside a job.

* ``WritableOutput``: before Hydra creates the run (or sweep) folder, check that it can be written;
  otherwise Hydra's own ``mkdir`` would fail with a traceback. Exits 1 with one paragraph.
* ``FailedJobs``: a sweep (``train.py -m``) with failed jobs does not exit 0. Each job that stops on an
  error writes ``failed.json`` into its folder and lets the others go on (``run.main``); once every job
  has returned, unless ``allow_failures=true``, it prints ``k of n jobs failed, see
  <folder>/failed.json ...`` and exits with ``EXIT_JOBS_FAILED``. A job folder is one holding
  ``.hydra/`` (Hydra writes it for every job of the sweep folder).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback

from podexp.errors import StorageError, shell_path, storage_error

EXIT_JOBS_FAILED = 1


def job_folders(sweep_dir: Path) -> list[Path]:
    """Every job folder of a sweep: the subfolders Hydra gave a ``.hydra`` record (``hydra.sweep.subdir``
    is one level, ``configs/hydra/default.yaml``), or the sweep folder itself when its subdir is empty (every
    override result-neutral)."""
    sweep_dir = Path(sweep_dir)
    return sorted(p.parent for p in [*sweep_dir.glob("*/.hydra"), sweep_dir / ".hydra"] if p.is_dir())


def failed_jobs(sweep_dir: Path) -> tuple[list[Path], int]:
    """(the job folders holding failed.json, the number of job folders) of a sweep."""
    folders = job_folders(sweep_dir)
    return [f for f in folders if (f / "failed.json").exists()], len(folders)


def failure_summary(failed: list[Path], total: int) -> str:
    """``k of n jobs failed, see FOLDER/failed.json (...)``."""
    shown = ", ".join(shell_path(f / "failed.json") for f in failed[:3])
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    return (
        f"{len(failed)} of {total} jobs failed, see {shown}{more}. The other jobs' results stand; fix the cause and "
        f"re-run the same command with hydra.sweep.dir=<this sweep folder> (finished jobs are not retrained), or "
        f"add allow_failures=true to exit 0 with failed jobs."
    )


class FailedJobs(Callback):
    """Hydra callback: exit non-zero after a sweep with failed jobs unless ``allow_failures=true``."""

    def on_multirun_end(self, config, **kwargs) -> None:
        failed, total = failed_jobs(Path(config.hydra.sweep.dir))
        if not failed or config.get("allow_failures"):
            return
        print(f"\nerror: {failure_summary(failed, total)}\n", file=sys.stderr)
        sys.exit(EXIT_JOBS_FAILED)


def write_problem(folder: Path) -> str | None:
    """Why ``folder`` (which may not exist yet) cannot be written, or None. Nothing is left behind: the
    nearest existing folder on its path gets a temporary folder, removed at once."""
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".podexp-write-check-"))
    except OSError as err:
        problem = storage_error(OSError(err.errno, err.strerror, str(folder)))
        return str(problem) if problem is not None else f"Cannot write {shell_path(folder)}: {err.strerror}."
    return None


class WritableOutput(Callback):
    """Hydra callback: stop with one paragraph (exit 1) when the run or sweep folder cannot be written."""

    def _check(self, folder: str) -> None:
        problem = write_problem(Path(folder))
        if problem is not None:
            print(f"\nerror: {problem}\n", file=sys.stderr)
            sys.exit(StorageError.exit_code)

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config.hydra.run.dir)

    def on_multirun_start(self, config, **kwargs) -> None:
        self._check(config.hydra.sweep.dir)
