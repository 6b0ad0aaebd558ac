"""The graph-ready training step (``trainer.cuda_graph``, ``podexp.train.graph``), checked on the CPU.

A CUDA graph freezes the kernels of one step and their arguments. On the CPU the same ``GraphedStep``
runs without capture (``capture=False``): static input buffers, device learning rates, kept optimiser
state, the guard's flag as ``found_inf``. These tests check that this form computes exactly what the
eager step computes, reads nothing on the host, and dispatches the same operators with the same scalar
arguments step after step (what a replay repeats), even across an lr milestone and a momentum reset.
"""

from __future__ import annotations

import pytest
import torch
from helpers import FAST, TINY_DATA, compose, train_in_process
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from podexp import optim
from podexp.compose import build_run
from podexp.errors import ConfigError
from podexp.io import load_checkpoint
from podexp.losses import available as available_losses
from podexp.train import loop, signals
from podexp.train.callbacks import MomentumReset
from podexp.train.graph import GraphedStep
from podexp.train.loggers import LocalMetrics
from podexp.train.loop import Trainer
from podexp.validate import validate_config

CPU = torch.device("cpu")
TINY = (
    *FAST,
    *TINY_DATA,
)  # 4 steps per epoch
MILESTONE = ("trainer.epochs=3", "sched.milestones=[1]", "optim.reset_momentum_at_milestones=true")
LOSSES = ["softmax", "pod", "cot", "lsoftmax"]


@pytest.fixture
def fused(monkeypatch):
    """Fused optimisers on the CPU, as on CUDA: the guard's sync-free path (``found_inf``)."""
    monkeypatch.setattr(optim, "optimizer_kernel", lambda device: {"fused": True})


def make_trainer(*overrides, graph_ready: bool) -> Trainer:
    run = build_run(compose(*TINY, *overrides), CPU)
    trainer = Trainer(
        run.model,
        run.loss,
        run.loaders,
        run.optimizers,
        run.schedulers,
        run.settings,
        callbacks=[MomentumReset(run.momentum_reset_epochs)],
        device=CPU,
    )
    if graph_ready:
        trainer.graph = GraphedStep(trainer, capture=False)
    return trainer


def full_state(trainer: Trainer) -> dict:
    state = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    state |= {f"loss.{k}": v for k, v in trainer.loss.state_dict().items()}
    for i, opt in enumerate(trainer.optimizers):
        for j, s in opt.state_dict()["state"].items():
            state |= {f"opt{i}.{j}.{k}": v for k, v in s.items() if isinstance(v, torch.Tensor)}
    state["stats"] = trainer.stats.values
    return state


@pytest.mark.parametrize("loss", LOSSES)
def test_graph_ready_step_is_bit_identical_to_the_eager_step_across_a_milestone(monkeypatch, loss):
    """3 epochs, lr x0.1 and a momentum reset at epoch 1. The graph-ready step (fused SGD, device lr, static
    buffers, kept optimiser state) equals the eager step with the same fused SGD (the CUDA path: the
    guard's ``found_inf``) bit for bit. Today's eager CPU step uses foreach SGD, whose kernel rounds
    differently from the fused one (last-bit differences in some runs): it agrees to float rounding."""
    runs = {"today": make_trainer(f"loss={loss}", *MILESTONE, graph_ready=False)}
    monkeypatch.setattr(optim, "optimizer_kernel", lambda device: {"fused": True})
    runs["fused"] = make_trainer(f"loss={loss}", *MILESTONE, graph_ready=False)
    runs["ready"] = make_trainer(f"loss={loss}", *MILESTONE, graph_ready=True)
    rows = {name: {k: v for k, v in trainer.fit().items() if k != "epoch_time"} for name, trainer in runs.items()}
    ready = runs["ready"]
    assert ready.guard.sync_free and not runs["today"].guard.sync_free and ready.graph.kept
    assert rows["ready"] == rows["fused"] and rows["ready"] == pytest.approx(rows["today"], rel=1e-4)
    assert ready.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.01)  # past the milestone
    states = {name: full_state(trainer) for name, trainer in runs.items()}
    for key in states["today"]:
        assert torch.equal(states["ready"][key], states["fused"][key]), f"{key} differs from the fused eager step"
        assert torch.allclose(states["ready"][key].double(), states["today"][key].double(), rtol=1e-4, atol=1e-6)
    # the momentum reset at epoch 1 cleared the state; the step put its kept tensors back (zeroed)
    for opt, kept in zip(ready.optimizers, ready.graph.kept):
        for param, tensors in kept.items():
            assert all(opt.state[param][k] is t for k, t in tensors.items())


def test_graph_ready_adamw_step_is_bit_identical_and_takes_a_cleared_state(fused):
    """Fused AdamW (its step count is a tensor too): the graph-ready step equals the eager one, also after
    the optimiser state is dropped at epoch 1 (kept moments and step count zeroed in place)."""
    runs = {}
    for name in ("fused", "ready"):
        runs[name] = make_trainer("loss=pod", "optim=adamw", "trainer.epochs=3", graph_ready=name == "ready")
        runs[name].callbacks.append(MomentumReset({1}))
    rows = [{k: v for k, v in trainer.fit().items() if k != "epoch_time"} for trainer in runs.values()]
    assert rows[0] == rows[1]
    eager, ready = full_state(runs["fused"]), full_state(runs["ready"])
    assert any(".step" in key for key in ready)
    for key in eager:
        assert torch.equal(eager[key], ready[key]), f"{key} differs"


class FailOnHostRead(TorchDispatchMode):
    """Raises on the operators that copy a device value to the host (``.item()``, ``bool(tensor)``)."""

    READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default, torch.ops.aten.item.default}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.READS:
            raise AssertionError(f"host read in the step: {func}")
        return func(*args, **(kwargs or {}))


def _batches(trainer):
    """The training batches of epochs 0, 1, ... in train mode."""
    trainer.model.train()
    trainer.loss.train()
    for epoch in range(100):
        trainer.loaders.train.set_epoch(epoch, 0)
        yield from trainer.loaders.train


@pytest.mark.parametrize(
    "loss, on_nan", [(name, "stop") for name in available_losses()] + [(name, "skip") for name in LOSSES]
)
def test_graph_ready_step_reads_nothing_on_the_host(fused, loss, on_nan):
    trainer = make_trainer(f"loss={loss}", f"trainer.on_nan={on_nan}", graph_ready=True)
    batches = _batches(trainer)
    for _ in range(5):  # warm-up, freeze and a step after it
        batch = next(batches)
        with FailOnHostRead():
            trainer.step(*batch)
    assert trainer.graph.kept is not None


def test_the_eager_cpu_step_does_read_the_flag_on_the_host():
    """The control: foreach optimisers take the per-step path, which reads the guard's flag."""
    trainer = make_trainer("loss=softmax", graph_ready=False)
    batch = next(_batches(trainer))
    with pytest.raises(AssertionError, match="host read"), FailOnHostRead():
        trainer.step(*batch)


class RecordOps(TorchDispatchMode):
    """Each dispatched operator with its non-tensor arguments (tensors by shape and dtype only)."""

    SCALARS = (bool, int, float, str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format)

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}

        def describe(x):
            if isinstance(x, torch.Tensor):
                return ("tensor", tuple(x.shape), x.dtype)
            return x if isinstance(x, self.SCALARS) else type(x).__name__

        if func.namespace != "profiler":  # record_function markers (the optimiser's step name)
            self.ops.append((str(func), tree_map(describe, args), tree_map(describe, kwargs)))
        return func(*args, **kwargs)


def device_step_ops(trainer: Trainer, steps: int) -> list[list]:
    """The operators of ``Trainer.device_step`` (what a graph captures) in each of ``steps`` steps."""
    recorded, original = [], trainer.device_step

    def recording(images, labels):
        with RecordOps() as mode:
            original(images, labels)
        recorded.append(mode.ops)

    trainer.device_step = recording
    batches = _batches(trainer)
    for _ in range(steps):
        trainer.step(*next(batches))
    return recorded


@pytest.mark.parametrize("loss", LOSSES)
def test_consecutive_graph_ready_steps_dispatch_the_same_ops_and_scalars(fused, loss):
    """Cosine schedule: the lr changes every step, the graph-ready step's operators do not."""
    trainer = make_trainer(f"loss={loss}", "sched=cosine", graph_ready=True)
    *_, before, after = device_step_ops(trainer, 6)  # steps 5 and 6: after the warm-up and the freeze
    assert len(before) > 20 and before == after


def test_a_python_float_lr_changes_the_ops_between_steps(fused):
    """The control: the eager step hands the fused SGD kernel the lr as a Python float, so two steps of a
    cosine schedule differ in that argument, which a graph would freeze at its captured value."""
    trainer = make_trainer("loss=softmax", "sched=cosine", graph_ready=False)
    *_, before, after = device_step_ops(trainer, 6)
    differing = [a[0] for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and differing and all("_fused_sgd_" in name for name in differing)


def test_cuda_graph_true_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="trainer.cuda_graph=sometimes: use false, true or auto"):
        validate_config(compose(*TINY, "trainer.cuda_graph=sometimes"))
    with pytest.raises(ConfigError, match=r"trainer.cuda_graph=true.*not CUDA.*trainer.cuda_graph=auto"):
        make_trainer("trainer.cuda_graph=true", graph_ready=False)
    assert make_trainer("trainer.cuda_graph=auto", graph_ready=False).graph is None  # auto: eager on the CPU


def test_graph_ready_run_resumed_mid_epoch_is_bit_exact(fused, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "graph_step", lambda trainer: GraphedStep(trainer, capture=False))
    run = (*TINY, *MILESTONE, "loss=pod", "trainer.checkpoint=true")
    train_in_process(tmp_path / "whole", *run)
    calls = {"n": 0}

    def requested():  # a preemption request after the 6th step: epoch 2, 2 of its 4 steps done
        calls["n"] += 1
        return calls["n"] == 6

    with monkeypatch.context() as patch:
        patch.setattr(signals, "requested", requested)
        with pytest.raises(signals.Preempted):
            train_in_process(tmp_path / "cut", *run)
    train_in_process(tmp_path / "cut", *run)

    def rows(folder):
        return [{k: v for k, v in r.items() if k != "epoch_time"} for r in LocalMetrics(folder).rows()]

    assert rows(tmp_path / "cut") == rows(tmp_path / "whole")
    whole, _ = load_checkpoint(tmp_path / "whole" / "last.pt")
    cut, _ = load_checkpoint(tmp_path / "cut" / "last.pt")
    for part in ("model", "loss"):
        for key in whole[part]:
            assert torch.equal(whole[part][key], cut[part][key]), f"{part}.{key} differs"
    for a, b in zip(whole["optimizers"], cut["optimizers"]):
        for i in a["state"]:
            assert torch.equal(a["state"][i]["momentum_buffer"], b["state"][i]["momentum_buffer"])


class FailingCapture:
    """Stands in for ``torch.cuda.graph``: the capture fails at once, as it does when an operator syncs."""

    def __init__(self, graph):
        pass

    def __enter__(self):
        raise RuntimeError("operation not permitted when stream is capturing")

    def __exit__(self, *exc):
        return False


def test_a_failed_capture_goes_on_eagerly_under_auto_and_raises_under_true(fused, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "graph", FailingCapture)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: None)
    eager = make_trainer("loss=pod", graph_ready=False)
    auto = make_trainer("loss=pod", graph_ready=False)
    auto.graph = GraphedStep(auto, capture=True, strict=False, warmup_steps=0)
    batches = list(zip(range(3), _batches(eager)))
    for _, (x, y) in batches:
        eager.step(x, y)
        auto.step(x, y)
    assert auto.graph.graph is None and not auto.graph.capture and "could not be captured" in caplog.text
    for key, value in full_state(eager).items():
        assert torch.equal(value, full_state(auto)[key]), f"{key} differs"
    strict = make_trainer("loss=pod", graph_ready=False)
    strict.graph = GraphedStep(strict, capture=True, strict=True, warmup_steps=0)
    with pytest.raises(RuntimeError, match="capturing"):
        strict.step(*batches[0][1])


def test_auto_captures_only_on_one_cuda_process_with_fused_optimisers_and_no_reduce_overhead():
    from podexp.train.graph import graph_blockers

    param = torch.nn.Parameter(torch.zeros(2))
    fused_sgd = torch.optim.SGD([param], lr=0.1, fused=True)
    foreach_sgd = torch.optim.SGD([param], lr=0.1, foreach=True)
    cuda = torch.device("cuda")
    assert graph_blockers(cuda, 1, [fused_sgd], False) == []
    assert graph_blockers(cuda, 1, [fused_sgd], "default") == []  # compile's default mode runs inside the graph
    assert graph_blockers(CPU, 1, [fused_sgd], False) == ["the device is cpu, not CUDA"]
    assert "several processes" in graph_blockers(cuda, 2, [fused_sgd], False)[0]
    assert graph_blockers(cuda, 1, [fused_sgd, foreach_sgd], False) == ["an optimiser is not fused"]
    assert "reduce-overhead" in graph_blockers(cuda, 1, [fused_sgd], "reduce-overhead")[0]
