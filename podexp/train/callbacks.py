"""What happens around the training steps, as callbacks of the ``Trainer``.

A callback overrides the hooks it needs; the trainer calls them in list order:

* ``on_fit_start(trainer)``: before the first epoch of ``fit`` (after a resume has loaded its state);
* ``on_epoch_start(trainer, epoch)``: before the epoch's first batch (not when a resumed run continues
  an epoch in the middle);
* ``on_step_end(trainer)``: after each batch, once ``trainer.step_in_epoch`` counts it;
* ``on_epoch_end(trainer, row)``: after the epoch's evaluation, with its metrics row.

The run (``podexp.train.run``) wires them: ``MetricsWriter`` and ``WandbCallback`` on rank 0 only,
``Checkpointer`` (writes on rank 0), ``Preemption`` and ``MomentumReset`` on every rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from podexp.errors import storage_error
from podexp.io import save_checkpoint, tensor_bytes
from podexp.train import resume, signals
from podexp.train.loggers import LocalMetrics, WandbLogger


class Callback:
    """The hooks, each doing nothing."""

    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer, epoch: int) -> None:
        pass

    def on_step_end(self, trainer) -> None:
        pass

    def on_epoch_end(self, trainer, row: dict) -> None:
        pass


class MetricsWriter(Callback):
    """One row per epoch in ``metrics.jsonl``/``metrics.csv``; a resumed run first drops the rows of the
    epochs it is about to redo."""

    def __init__(self, out_dir: Path):
        self.metrics = LocalMetrics(out_dir)

    def on_fit_start(self, trainer) -> None:
        self.metrics.truncate_after(trainer.epoch)

    def on_epoch_end(self, trainer, row: dict) -> None:
        self.metrics.log(row)

    def last_row(self) -> dict:
        return (self.metrics.rows() or [{}])[-1]


class WandbCallback(Callback):
    """Each epoch's row to the W&B run (which the run starts, summarises and finishes), and with
    ``logger.log_every_n_steps`` = N > 0 the epoch's running train loss/accuracy every N steps (one host
    read of the epoch's sums; under torchrun rank 0's share, as only rank 0 logs)."""

    def __init__(self, logger: WandbLogger):
        self.logger = logger

    def on_step_end(self, trainer) -> None:
        every = self.logger.log_every_n_steps
        if every and trainer.step_in_epoch % every == 0:
            self.logger.log_step(trainer.global_step, trainer.stats.summary("train"))

    def on_epoch_end(self, trainer, row: dict) -> None:
        self.logger.log(row)


class Checkpointer(Callback):
    """``last.pt`` (the previous one kept as ``prev.pt``) after every epoch, written by rank 0: the
    trainer's state plus the run's resolved config, its hash and the W&B run id (``wandb_run_id()``).
    The trainer has checked that model and loss hold only finite values (``Trainer.check_finite``)."""

    def __init__(self, out_dir: Path, resolved: dict, wandb_run_id: Callable[[], str | None]):
        self.out_dir, self.resolved, self.wandb_run_id = Path(out_dir), resolved, wandb_run_id

    def save(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        state = {
            **trainer.state_dict(),
            "config": self.resolved,
            "config_hash": resume.config_hash(self.resolved),
            "wandb_run_id": self.wandb_run_id(),
        }
        try:
            save_checkpoint(state, self.out_dir)
        except OSError as err:  # disk full: say how much room a checkpoint takes (prev.pt holds another)
            problem = storage_error(
                err, f" A checkpoint of this run needs about {tensor_bytes(state) / 2**20:.1f} MiB."
            )
            if problem is None:
                raise
            raise problem from None

    def on_epoch_end(self, trainer, row: dict) -> None:
        self.save(trainer)


class Preemption(Callback):
    """After SIGTERM/SIGUSR1 (``podexp.train.signals``): at the next step boundary, save a mid-epoch
    checkpoint with ``checkpointer`` (None: ``trainer.checkpoint=false``, nothing saved) and raise
    ``Preempted``. One process reads its flag after every step; the ranks of a torchrun job agree on it
    with an all-reduce every ``check_every`` steps (``trainer.preempt_check_every``)."""

    def __init__(self, out_dir: Path, checkpointer: Checkpointer | None, check_every: int):
        self.out_dir, self.checkpointer, self.check_every = Path(out_dir), checkpointer, max(1, check_every)

    def on_step_end(self, trainer) -> None:
        if not signals.requested_by_all(trainer.dist, trainer.step_in_epoch, self.check_every, trainer.device):
            return
        if self.checkpointer is not None:
            trainer.check_finite()  # a non-finite state is not saved: the previous checkpoint stays the last good one
            self.checkpointer.save(trainer)
        saved, reason = self.checkpointer is not None, signals.reason()
        raise signals.Preempted(
            resume.preemption_message(self.out_dir, saved, trainer.epoch, trainer.step_in_epoch, reason)
        )


class MomentumReset(Callback):
    """The authors' code rebuilds its SGD at each lr milestone: the optimisers' state (momentum) is
    dropped at the start of each epoch in ``epochs``."""

    def __init__(self, epochs):
        self.epochs = frozenset(epochs)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if epoch in self.epochs:
            for optimizer in trainer.optimizers:
                optimizer.state.clear()
