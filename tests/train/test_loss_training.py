"""Losses with trainer hooks, trained through the real Trainer (debug=fast: synthetic data, small_cnn)."""

import torch
from helpers import FAST, build_trainer, compose

CPU = torch.device("cpu")


def make_trainer(*overrides):
    return build_trainer(compose(*FAST, "trainer.epochs=1", *overrides), CPU)


def test_cot_takes_one_step_per_objective_per_batch_in_order():
    trainer = make_trainer("loss=cot")
    steps_taken, objectives_seen = [], []
    for index, optimizer in enumerate(trainer.optimizers):
        optimizer.register_step_post_hook(lambda opt, args, kwargs, index=index: steps_taken.append(index))

    def record_objective(module, args, kwargs):
        if module.training and torch.is_grad_enabled():
            objectives_seen.append(kwargs.get("objective", 0))

    trainer.loss.register_forward_pre_hook(record_objective, with_kwargs=True)
    trainer.fit()
    batches = len(trainer.loaders.train)
    assert len(trainer.optimizers) == 2
    assert steps_taken == [0, 1] * batches
    assert objectives_seen == [0, 1] * batches
    assert all(s.last_epoch == batches for s in trainer.schedulers)


def test_center_centres_move_with_lr_alpha_and_no_weight_decay():
    trainer = make_trainer("loss=center", "loss.alpha=0.4")
    centres = trainer.loss.centres
    groups = [g for g in trainer.optimizers[0].param_groups if any(p is centres for p in g["params"])]
    assert len(groups) == 1
    assert groups[0]["lr"] == 0.4 and groups[0]["weight_decay"] == 0.0
    assert trainer.optimizers[0].param_groups[0]["weight_decay"] > 0  # the network keeps its decay
    before = centres.detach().clone()
    trainer.fit()
    assert not torch.allclose(centres.detach(), before)
    assert "centres" in trainer.state_dict()["loss"]


def test_pod_pedcc_is_bit_identical_after_training():
    trainer = make_trainer("loss=pod")
    before = trainer.loss.pedcc.clone()
    trained = {id(p) for opt in trainer.optimizers for g in opt.param_groups for p in g["params"]}
    assert id(trainer.loss.pedcc) not in trained
    trainer.fit()
    assert torch.equal(trainer.loss.pedcc, before)
