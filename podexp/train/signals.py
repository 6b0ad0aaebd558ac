"""Preemption: SIGTERM / SIGUSR1 ask the trainer to checkpoint at the next step boundary and leave.

The first signal only sets a flag (``requested()``), which the trainer reads after every optimiser
step (a Python bool: no device synchronisation). It then writes a mid-epoch checkpoint and raises
``Preempted``, which ``run.main`` turns into exit code ``EXIT_PREEMPTED`` (75, ``EX_TEMPFAIL``:
"temporary failure, try again"). A second signal exits at once with the same code: every file is
written atomically, so the folder still holds the previous good checkpoint. Once a signal has come,
the handlers stay installed until the process exits, and the interpreter's own shutdown ignores the
signals (a second SIGTERM during the checkpoint or the way out still exits 75, never 143).

Ctrl-C (SIGINT) is handled the same way and exits with ``EXIT_INTERRUPTED`` (130, the shell's code
for an interrupt), with one line and no traceback.

On SLURM, ``#SBATCH --signal=USR1@120`` (or submitit's timeout signal) sends SIGUSR1 before the time
limit; a requeued job runs the same command in the same folder, where ``resume=auto`` continues.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from contextlib import contextmanager

import torch

log = logging.getLogger(__name__)

EXIT_PREEMPTED = 75
EXIT_INTERRUPTED = 130  # 128 + SIGINT
SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGUSR1", "SIGINT")) if s is not None)

_requested: int | None = None  # the number of the first signal received, if any


def exit_code(signum: int | None) -> int:
    """The exit code after ``signum``: 130 for Ctrl-C (SIGINT), 75 for a preemption."""
    return EXIT_INTERRUPTED if signum == getattr(signal, "SIGINT", None) else EXIT_PREEMPTED


class Preempted(SystemExit):
    """Raised after the preemption checkpoint is written; exits with ``exit_code`` of the signal."""

    def __init__(self, message: str):
        super().__init__(exit_code(_requested))
        self.message = message

    def __str__(self) -> str:
        return self.message


def requested() -> bool:
    return _requested is not None


def reason() -> str:
    """How a stopped run names its stop: Interrupted (Ctrl-C) after SIGINT, else Preempted."""
    return "Interrupted (Ctrl-C)" if exit_code(_requested) == EXIT_INTERRUPTED else "Preempted"


def signal_name() -> str:
    return signal.Signals(_requested).name if _requested is not None else ""


def _handle(signum, _frame) -> None:
    global _requested
    if _requested is not None:
        code = exit_code(_requested)
        os.write(
            2,
            f"\nSecond {signal.Signals(signum).name}: exiting now (exit code {code}); "
            f"the last complete checkpoint is kept.\n".encode(),
        )
        os._exit(code)
    _requested = signum
    os.write(
        2,
        f"\n{signal.Signals(signum).name} received: saving a checkpoint at the next step, then "
        f"exiting with code {exit_code(signum)}. Send it again to exit at once.\n".encode(),
    )


@contextmanager
def preemption_handlers():
    """Install the handlers for the duration of a run (main thread only), then restore the old ones,
    except after a signal: the process is on its way out, and a second signal must still exit with the
    preemption code rather than the default handler's 143 (SIGTERM) or a KeyboardInterrupt."""
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
        if _requested is None:
            for s, handler in previous.items():
                signal.signal(s, handler)
        else:
            atexit.register(_ignore_during_shutdown)


def _ignore_during_shutdown() -> None:
    """At interpreter exit Python resets a Python-level handler to the default one (a second SIGTERM
    would then end the process with 143), but keeps an ignored signal ignored: after a preemption the
    last moments of the exit, already on its way out with the preemption code, ignore further signals."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


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
