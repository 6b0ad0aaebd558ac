"""Non-finite losses/gradients: stop with a clear message (default) or skip the step (on_nan=skip)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import FAST, TINY_DATA, train_in_process
from torch import nn

from podexp.io import load_checkpoint
from podexp.losses.pedcc_family import PODLoss
from podexp.train.divergence import DivergenceError, NonFiniteGuard, non_finite_tensors
from podexp.train.loggers import LocalMetrics

TINY = (
    *FAST,
    "trainer.checkpoint=true",
    "trainer.epochs=4",
    *TINY_DATA,
)
BAD_STEP = 9  # 0-based global step: epoch 3 (1-based), its 2nd of 4 steps


def plant_nan(monkeypatch, at_step: int = BAD_STEP):
    """POD's training loss returns nan at its ``at_step``-th training call (test-only hook)."""
    original, calls = PODLoss.compute, {"n": -1}

    def compute(self, z, y, objective=0):
        loss = original(self, z, y, objective)
        if self.training:
            calls["n"] += 1
            if calls["n"] == at_step:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(PODLoss, "compute", compute)


def test_nan_stops_with_epoch_step_and_loss_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    plant_nan(monkeypatch)
    with pytest.raises(DivergenceError) as stopped:
        train_in_process(tmp_path, *TINY)
    message = str(stopped.value)
    assert "epoch 3, step 2 of 4" in message and "global step 9" in message and "loss = nan" in message
    assert "trainer.on_nan=skip" in message
    state, used = load_checkpoint(tmp_path / "last.pt")
    assert used.name == "last.pt" and state["epoch"] == 2 and state["step_in_epoch"] == 0
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert [r["epoch"] for r in LocalMetrics(tmp_path).rows()] == [0, 1]
    assert not (tmp_path / "result.json").exists()


def test_skip_goes_on_and_counts_the_skipped_step(tmp_path, monkeypatch):
    plant_nan(monkeypatch)
    result = train_in_process(tmp_path, *TINY, "trainer.on_nan=skip")
    rows = LocalMetrics(tmp_path).rows()
    assert [r["skipped_steps"] for r in rows] == [0, 0, 1, 0]
    assert all(r["train_loss"] == r["train_loss"] for r in rows)  # the nan batch is left out
    assert result["epochs"] == 4 and result["final_test_acc"] > 0
    assert rows[3]["v"] == rows[3]["v"] and rows[3]["v"] > 0  # POD's v is not poisoned


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.bn = nn.Linear(3, 4), nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn(self.lin(x))


def snapshot(model, opt):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    momenta = [s["momentum_buffer"].clone() for s in opt.state.values() if "momentum_buffer" in s]
    return state, momenta


def one_batch(guard, model, opt, poison: bool):
    guard.begin_batch()
    opt.zero_grad()
    loss = model(torch.randn(8, 3)).pow(2).mean() * (float("nan") if poison else 1.0)
    loss.backward()
    bad = guard.step_optimizer(opt, loss, 0)
    guard.end_batch()
    return bad


@pytest.mark.parametrize("fused", [False, True], ids=["per-step check", "sync-free found_inf"])
def test_a_skipped_step_changes_no_weight_momentum_or_buffer(fused):
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=fused, foreach=not fused)
    guard = NonFiniteGuard(
        "skip", [opt], [model], steps_per_epoch=10, global_step=0, check_every=50, device=torch.device("cpu")
    )
    assert guard.sync_free is fused
    assert one_batch(guard, model, opt, poison=True)  # a bad *first* step (fused: no garbage)
    model_before, _ = snapshot(model, opt)
    assert one_batch(guard, model, opt, poison=False) == 0
    state, momenta = snapshot(model, opt)
    assert not torch.equal(state["lin.weight"], model_before["lin.weight"])
    lin_grad = model.lin.weight.grad.clone()
    assert torch.equal(momenta[0], lin_grad)  # momentum buffer = first good gradient
    assert one_batch(guard, model, opt, poison=True)
    after, momenta_after = snapshot(model, opt)
    for key in state:  # weights and BN statistics untouched
        assert torch.equal(after[key], state[key]), key
    for a, b in zip(momenta, momenta_after):
        assert torch.equal(a, b)
    assert guard.end_epoch() == 2 and int(guard.skipped) == 0


def test_a_skipped_fused_adamw_step_keeps_its_moments_and_step_count():
    """Fused AdamW takes the guard's flag too: it subtracts it from its (0-dim) step counts."""
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    guard = NonFiniteGuard(
        "skip", [opt], [model], steps_per_epoch=10, global_step=0, check_every=50, device=torch.device("cpu")
    )
    assert guard.sync_free and not one_batch(guard, model, opt, poison=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moments = [{k: v.clone() for k, v in s.items()} for s in opt.state.values()]
    assert one_batch(guard, model, opt, poison=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for kept, state in zip(moments, opt.state.values()):
        assert all(torch.equal(kept[k], state[k]) for k in ("exp_avg", "exp_avg_sq", "step"))
    assert float(next(iter(opt.state.values()))["step"]) == 1.0


def test_sync_free_path_reads_nothing_on_the_host_until_the_cadence(monkeypatch):
    """On the fused (CUDA) path a step must not call .item()/bool()/tolist() on a tensor."""
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    guard = NonFiniteGuard(
        "stop", [opt], [model], steps_per_epoch=10, global_step=0, check_every=3, device=torch.device("cpu")
    )

    def forbidden(*_):
        raise AssertionError("host synchronisation inside a training step")

    for name in ("__bool__", "item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    one_batch(guard, model, opt, poison=False)
    one_batch(guard, model, opt, poison=True)
    guard.poll(2)  # not a multiple of 3: no read
    monkeypatch.undo()
    with pytest.raises(DivergenceError, match="epoch 1, step 2 of 10"):
        guard.poll(3)


def plant_nan_from(monkeypatch, first_step: int):
    """POD's training loss is nan at every training call from the ``first_step``-th on."""
    original, calls = PODLoss.compute, {"n": -1}

    def compute(self, z, y, objective=0):
        loss = original(self, z, y, objective)
        if self.training:
            calls["n"] += 1
            if calls["n"] >= first_step:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(PODLoss, "compute", compute)


def test_skip_stops_as_diverged_when_an_epoch_skips_too_many_steps(tmp_path, monkeypatch):
    """From epoch 3 on every step is bad: the run must not end as `completed` with an early epoch's
    accuracy; it stops with failed.json status diverged and exit code 1 (a failure, not bad input)."""
    from helpers import compose

    from podexp.train.run import main

    plant_nan_from(monkeypatch, BAD_STEP - 1)  # epoch 3: all 4 steps
    monkeypatch.chdir(tmp_path)  # outside Hydra, main() writes into the working folder
    with pytest.raises(SystemExit) as stopped:
        main(compose(*TINY, "trainer.on_nan=skip"))
    assert stopped.value.code == 1
    failed = json.loads((tmp_path / "failed.json").read_text())
    assert failed["status"] == "diverged"
    assert "epoch 3 skipped 4 of its 4 steps" in failed["error"] and "trainer.max_skip_fraction=0.5" in failed["error"]
    assert not (tmp_path / "result.json").exists()
    assert load_checkpoint(tmp_path / "last.pt")[0]["epoch"] == 2
    assert [r["epoch"] for r in LocalMetrics(tmp_path).rows()] == [0, 1]


def test_an_epoch_with_every_step_skipped_logs_nan_not_zero(tmp_path, monkeypatch):
    plant_nan_from(monkeypatch, BAD_STEP - 1)
    train_in_process(tmp_path, *TINY, "trainer.on_nan=skip", "trainer.max_skip_fraction=1", "trainer.epochs=3")
    rows = LocalMetrics(tmp_path).rows()
    assert rows[2]["skipped_steps"] == 4
    assert math.isnan(rows[2]["train_loss"]) and math.isnan(rows[2]["train_acc"])
    assert math.isnan(rows[2]["train_latent_norm"]) and not math.isnan(rows[1]["train_loss"])


def test_a_non_finite_buffer_is_never_checkpointed(tmp_path, monkeypatch):
    """A finite loss and gradient can still leave v (or a BatchNorm statistic) at inf after an epoch: the
    run stops naming the tensor, and last.pt stays the previous epoch's."""
    original = PODLoss.on_epoch_end

    def on_epoch_end(self, epoch, all_reduce):
        original(self, epoch, all_reduce)
        if epoch == 2:
            self.v_value.fill_(float("inf"))

    monkeypatch.setattr(PODLoss, "on_epoch_end", on_epoch_end)
    with pytest.raises(DivergenceError) as stopped:
        train_in_process(tmp_path, *TINY)
    assert "after epoch 3 these tensors are not finite: loss.v_value." in str(stopped.value)
    state, used = load_checkpoint(tmp_path / "last.pt")
    assert used.name == "last.pt" and state["epoch"] == 2 and math.isfinite(state["loss"]["v_value"])


def test_non_finite_tensors_names_parameters_and_buffers():
    model = Tiny()
    assert non_finite_tensors(model=model) == []
    model.bn.running_var[1] = float("inf")
    model.lin.bias.data[0] = float("nan")
    assert non_finite_tensors(model=model) == ["model.lin.bias", "model.bn.running_var"]


@pytest.mark.parametrize("plant", [None, float("nan"), float("inf"), float("-inf")])
def test_fused_gradient_check_flags_what_the_total_norm_flags(plant):
    """The guard's one fused op (GradScaler's check, scale 1) agrees with ``~isfinite(total norm)`` and
    leaves every gradient's bits unchanged."""
    from podexp.train.divergence import grads_non_finite

    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(5, 3, generator=gen), torch.randn(7, generator=gen), torch.randn(2, 2, generator=gen).double()]
    if plant is not None:
        grads[1][4] = plant
    before = [g.clone() for g in grads]
    flag = grads_non_finite(grads, torch.device("cpu"))
    assert flag.dtype == torch.bool and flag.shape == ()
    assert bool(flag) == bool(~torch.isfinite(torch.nn.utils.get_total_norm(before))) == (plant is not None)
    assert all(torch.equal(g, b) or (g.isnan() == b.isnan()).all() for g, b in zip(grads, before))


def test_a_non_finite_state_stops_the_run_without_checkpoints_too(tmp_path):
    """trainer.checkpoint=false writes no checkpoint to guard, but an overflowed v (alpha=1e38) must still
    stop the run as diverged before the epoch is logged, not end it as completed."""
    with pytest.raises(DivergenceError) as stopped:
        train_in_process(tmp_path, *FAST, "trainer.epochs=3", "trainer.checkpoint=false", "loss.alpha=1e38")
    assert "these tensors are not finite: loss.v_value" in str(stopped.value)
    assert not (tmp_path / "result.json").exists()
    assert all(math.isfinite(row["v"]) for row in LocalMetrics(tmp_path).rows())
