"""Preemption: SIGTERM / SIGUSR1 ask the trainer to checkpoint at the next step boundary and leave.

The first signal only sets a flag (``requested()``), which the trainer reads after every optimiser
step (a Python bool: no device synchronisation). It then writes a mid-epoch checkpoint and raises
``Preempted``, which ``run.main`` turns into exit code ``EXIT_PREEMPTED`` (75, ``EX_TEMPFAIL``:
"temporary failure, try again"). A second signal exits at once with the same code: every file is
written atomically, so the folder still holds the previous good checkpoint.

On SLURM, ``#SBATCH --signal=USR1@120`` (or submitit's timeout signal) sends SIGUSR1 before the time
limit; a requeued job runs the same command in the same folder, where ``resume=auto`` continues.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager

import torch

log = logging.getLogger(__name__)

EXIT_PREEMPTED = 75
SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s)

_requested: int | None = None  # the number of the first signal received, if any


class Preempted(SystemExit):
    """Raised after the preemption checkpoint is written; exits with ``EXIT_PREEMPTED``."""

    def __init__(self, message: str):
        super().__init__(EXIT_PREEMPTED)
        self.message = message

    def __str__(self) -> str:
        return self.message


def requested() -> bool:
    return _requested is not None


def signal_name() -> str:
    return signal.Signals(_requested).name if _requested is not None else ""


def _handle(signum, _frame) -> None:
    global _requested
    if _requested is not None:
        os.write(
            2,
            f"\nSecond {signal.Signals(signum).name}: exiting now (exit code {EXIT_PREEMPTED}); "
            f"the last complete checkpoint is kept.\n".encode(),
        )
        os._exit(EXIT_PREEMPTED)
    _requested = signum
    os.write(
        2,
        f"\n{signal.Signals(signum).name} received: saving a checkpoint at the next step, then "
        f"exiting with code {EXIT_PREEMPTED}. Send it again to exit at once.\n".encode(),
    )


@contextmanager
def preemption_handlers():
    """Install the handlers for the duration of a run (main thread only), then restore the old ones."""
    global _requested
    _requested = None
    if threading.current_thread() is not threading.main_thread():
        log.warning("Not in the main thread: SIGTERM/SIGUSR1 will not trigger a preemption checkpoint.")
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested = None


def requested_by_all(dist, steps_done: int, every: int, device) -> bool:
    """``requested()`` agreed over the ranks of a torchrun job (any rank's signal counts).

    Ranks may receive the signal between different steps, so under data parallelism the flag is
    all-reduced every ``every`` steps (the same steps on every rank) and ignored in between; one
    process reads its own flag at every step.
    """
    if not dist.enabled:
        return requested()
    if steps_done % every:
        return False
    flag = torch.tensor(float(requested()), device=device)
    return bool(dist.all_reduce(flag) > 0)
