"""The end of a sweep (``train.py -m``): a sweep with failed jobs does not exit 0.

Each job that stops on an error writes ``failed.json`` into its folder and lets the others go on
(``run.main``). ``FailedJobs``, a Hydra callback listed in ``configs/hydra/default.yaml``, counts them
once every job has returned and, unless ``allow_failures=true``, prints ``k of n jobs failed, see
<folder>/failed.json ...`` and exits with ``EXIT_JOBS_FAILED``. A job folder is one holding
``.hydra/`` (Hydra writes it for every job of the sweep folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from podexp.errors import shell_path

EXIT_JOBS_FAILED = 1


def job_folders(sweep_dir: Path) -> list[Path]:
    """Every job folder under ``sweep_dir`` (the folders Hydra gave a ``.hydra`` record)."""
    return sorted(p.parent for p in Path(sweep_dir).rglob(".hydra") if p.parent != Path(sweep_dir))


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
