"""The Trainer's public pieces: EpochStats, the callbacks' hooks, and the settings record."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from helpers import CONFIGS, FAST, build_trainer, compose
from omegaconf import OmegaConf

from podexp.compose import momentum_reset_epochs
from podexp.settings import TrainerSettings
from podexp.train import signals
from podexp.train.callbacks import Callback, MomentumReset, Preemption
from podexp.train.loop import EpochStats

CPU = torch.device("cpu")


def test_trainer_settings_are_exactly_the_trainer_config_keys():
    keys = set(OmegaConf.load(CONFIGS / "trainer" / "default.yaml"))
    assert set(TrainerSettings.__dataclass_fields__) == keys
    settings = TrainerSettings.from_config(compose(*FAST, "trainer.preempt_check_every=7").trainer)
    assert (settings.preempt_check_every, settings.epochs, settings.device) == (7, 2, "cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 3


def test_epoch_stats_sum_by_hand_and_leave_out_a_skipped_batch():
    stats = EpochStats.zeros(CPU)
    z = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # norms 5 and 1
    stats.add(torch.tensor(0.5), torch.tensor([True, False]), z)
    stats.add(torch.tensor(9.0), torch.tensor([True, True]), z, keep=torch.tensor(False))
    stats.add(torch.tensor(1.5), torch.tensor([True, True]), 2 * z, keep=torch.tensor(True))
    assert (stats.loss_sum, stats.correct, stats.count, stats.norm_sum) == (0.5 * 2 + 1.5 * 2, 3.0, 4.0, 18.0)
    assert stats.summary("train") == {"train_loss": 1.0, "train_acc": 75.0, "train_latent_norm": 4.5}
    doubled = stats.reduced(lambda t: 2 * t)  # as summed over two identical ranks
    assert doubled.count == 8.0 and doubled.summary("test")["test_acc"] == 75.0


def test_step_accumulates_the_epochs_stats_and_fit_calls_hooks_in_order():
    class Recorder(Callback):
        def __init__(self):
            self.calls = []

        def on_fit_start(self, trainer):
            self.calls.append("fit_start")

        def on_epoch_start(self, trainer, epoch):
            self.calls.append(f"epoch_start {epoch}")

        def on_step_end(self, trainer):
            self.calls.append(f"step {trainer.step_in_epoch}")

        def on_epoch_end(self, trainer, row):
            self.calls.append(f"epoch_end {row['epoch']}")

    trainer = build_trainer(compose(*FAST, "trainer.epochs=2", "dataset.train_size=96", "dataset.batch_size=32"), CPU)
    images, labels = next(iter(trainer.loaders.train))
    trainer.step(images, labels)
    assert trainer.global_step == 1 and trainer.stats.count == 32 and trainer.step_in_epoch == 0
    recorder = Recorder()
    trainer.callbacks.append(recorder)
    trainer.fit()
    epoch = ["step 1", "step 2", "step 3"]
    assert recorder.calls == [
        "fit_start",
        "epoch_start 0",
        *epoch,
        "epoch_end 0",
        "epoch_start 1",
        *epoch,
        "epoch_end 1",
    ]
    assert trainer.stats.count == 96  # the last epoch's, the extra step not in it


class FakeDist:
    """A torchrun job of two ranks whose all-reduce sums this rank's flag with a silent rank's."""

    enabled, is_main = True, True

    def all_reduce(self, tensor):
        return tensor.clone()


def test_preemption_polls_at_its_own_cadence_and_raises_with_the_resume_message(tmp_path, monkeypatch):
    polled = []
    monkeypatch.setattr(signals, "requested", lambda: polled.append(True) or True)
    trainer = SimpleNamespace(dist=FakeDist(), device=CPU, epoch=1, step_in_epoch=0)
    preemption = Preemption(tmp_path, checkpointer=None, check_every=3)
    for step in (1, 2):
        trainer.step_in_epoch = step
        preemption.on_step_end(trainer)  # ranks only agree every 3 steps
    assert polled == []
    trainer.step_in_epoch = 3
    with pytest.raises(signals.Preempted) as stop:
        preemption.on_step_end(trainer)
    assert polled == [True] and stop.value.code == signals.EXIT_PREEMPTED
    assert "No checkpoint was written (trainer.checkpoint=false)" in str(stop.value)
    single = SimpleNamespace(dist=SimpleNamespace(enabled=False), device=CPU, epoch=0, step_in_epoch=1)
    with pytest.raises(signals.Preempted):  # one process: every step
        preemption.on_step_end(single)


def test_momentum_is_dropped_at_the_milestones_only_when_asked():
    def momentum_at_epoch_starts(*overrides):
        cfg = compose(*FAST, "trainer.epochs=3", "sched.milestones=[1]", *overrides)
        seen = []

        class Probe(Callback):
            def on_epoch_start(self, trainer, epoch):
                seen.append(sum(len(opt.state) for opt in trainer.optimizers))

        trainer = build_trainer(cfg, CPU)
        trainer.callbacks += [MomentumReset(momentum_reset_epochs(cfg)), Probe()]
        trainer.fit()
        return momentum_reset_epochs(cfg), seen

    epochs, seen = momentum_at_epoch_starts("optim.reset_momentum_at_milestones=true")
    assert epochs == {1} and seen[0] == 0 and seen[1] == 0 and seen[2] > 0
    epochs, seen = momentum_at_epoch_starts()
    assert epochs == frozenset() and seen[0] == 0 and seen[1] > 0 and seen[2] > 0
