"""The whole training step replayed as one CUDA graph (``trainer.cuda_graph``; docs/benchmarks.md).

An eager step launches each of its several hundred kernels from Python, one after the other; on a fast GPU
the host cannot keep up and the GPU idles between them. ``GraphedStep`` runs the trainer's device work
(``Trainer.device_step``: for every objective forward, loss, ``zero_grad``, backward, the non-finite guard
with the fused optimisers' ``found_inf`` and the optimiser step; then the metric sums) from static buffers,
so ``torch.cuda.graph`` can capture it once and replay it every step. Per step the host copies the batch
into the static input buffers, writes the scheduled learning rates into device tensors and replays;
``loss.on_step``, the schedules and the step counter stay on the host (``Trainer.step``). Evaluation is eager.

What makes the step graph-ready (the same code runs on the CPU without capture, which the tests check):

* each param group's learning rate is a 0-dim device tensor while the step body runs (fused SGD takes a
  tensor lr; AdamW is built ``capturable``), filled from the host's schedule before each replay, so the
  schedule needs no re-capture. L-Softmax's lambda is computed on the device from its ``step`` buffer,
  filled by ``loss.on_step`` before the step;
* every tensor the step reads or writes outside itself outlives it: the input buffers, the metric sums
  (zeroed in place each epoch), the guard's flags and counters, model and loss buffers (``load_state_dict``
  copies into them), and the optimiser state. A momentum reset (``optimizer.state.clear()``) or a resume
  (``Optimizer.load_state_dict``) replaces optimiser state tensors: before each step the new values are
  copied into the captured tensors (zeros for a cleared state, which is what a fresh state starts from)
  and those are put back, so no re-capture is needed;
* no host reads: the guard's flag goes to the fused kernels as ``found_inf``;
* warm-up: ``WARMUP_STEPS`` real steps on a side stream before the capture (cuDNN autotuning; the optimiser
  state exists), as in PyTorch's whole-network capture recipe. A batch of another shape (a last partial
  batch) runs eagerly through the same body.

``auto`` turns it on where it can work: CUDA, one process, every optimiser fused and ``trainer.compile``
not ``reduce-overhead`` (which replays its own graphs). DDP is not captured yet; it would need
``static_graph=True``, NCCL's asynchronous error handling off, about 11 warm-up steps under DDP before the
capture, the loss parameters' gradient all-reduce (``distributed.average_gradients``) captured with it and
the preemption agreement kept outside the graph.
"""

from __future__ import annotations

import logging

import torch

from podexp.errors import ConfigError

WARMUP_STEPS = 3  # real steps before the capture (PyTorch's recipe uses 3; DDP would need 11)

log = logging.getLogger(__name__)


def graph_blockers(device: torch.device, world_size: int, optimizers, compile_setting) -> list[str]:
    """Why the training step cannot be captured here (empty: it can)."""
    reasons = []
    if device.type != "cuda":
        reasons.append(f"the device is {device.type}, not CUDA")
    if world_size > 1:
        reasons.append("the run has several processes (DDP is not captured yet)")
    if not all(group.get("fused") for opt in optimizers for group in opt.param_groups):
        reasons.append("an optimiser is not fused")
    if compile_setting == "reduce-overhead":
        reasons.append("trainer.compile=reduce-overhead replays its own CUDA graphs")
    return reasons


def graph_step(trainer) -> GraphedStep | None:
    """The ``GraphedStep`` ``trainer.cuda_graph`` asks for (None: eager steps). ``true`` where a graph
    cannot work is a ``ConfigError`` naming why."""
    setting = trainer.settings.cuda_graph
    if setting is False:
        return None
    blockers = graph_blockers(trainer.device, trainer.dist.world_size, trainer.optimizers, trainer.settings.compile)
    if blockers and setting is True:
        raise ConfigError(
            f"trainer.cuda_graph=true cannot capture the training step here: {'; '.join(blockers)}. "
            "Set trainer.cuda_graph=auto (a graph wherever one works, eager steps elsewhere) or false."
        )
    return None if blockers else GraphedStep(trainer, capture=True, strict=setting is True)


class GraphedStep:
    """``Trainer.device_step`` from static buffers with device learning rates: captured as one CUDA graph
    after ``warmup_steps`` eager steps when ``capture``; otherwise run eagerly every step (the CPU form the
    tests compare with the plain eager step). A capture that fails raises when ``strict``
    (``trainer.cuda_graph=true``) and otherwise logs a warning and goes on with eager steps."""

    def __init__(self, trainer, *, capture: bool, strict: bool = True, warmup_steps: int = WARMUP_STEPS):
        self.trainer, self.capture, self.strict, self.warmup_left = trainer, capture, strict, warmup_steps
        # the lr type each fused kernel reads: CUDA kernels a float32 on the device, CPU ones a double
        dtype = torch.float32 if trainer.device.type == "cuda" else torch.float64
        groups = [opt.param_groups for opt in trainer.optimizers]
        self.lrs = [[torch.zeros((), dtype=dtype, device=trainer.device) for _ in g] for g in groups]
        self.inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.kept: list[dict] | None = None  # per optimiser: {param: {key: the state tensor the step was frozen with}}
        self.graph = None
        self.captures = 0

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        for lrs, opt in zip(self.lrs, self.trainer.optimizers):
            for lr, group in zip(lrs, opt.param_groups):
                lr.fill_(group["lr"])
        if self.kept is not None:
            self._restore_state()
        if self.inputs is not None and (images.shape, labels.shape) != (self.inputs[0].shape, self.inputs[1].shape):
            self._body(images, labels)  # another batch shape (a last partial batch): eager, same body
            return
        if self.inputs is None:
            self.inputs = (images.clone(), labels.clone())
        else:
            self.inputs[0].copy_(images)
            self.inputs[1].copy_(labels)
        if self.graph is not None:
            self.graph.replay()
        elif self.warmup_left > 0:
            self.warmup_left -= 1
            self._warm_up()
        else:
            self._freeze()

    def _body(self, images, labels) -> None:
        """``Trainer.device_step`` with every param group's lr swapped for its device tensor."""
        optimizers = self.trainer.optimizers
        groups = [(g, lr) for opt, lrs in zip(optimizers, self.lrs) for g, lr in zip(opt.param_groups, lrs)]
        host_lrs = [g["lr"] for g, _ in groups]
        for group, lr in groups:
            group["lr"] = lr
        try:
            self.trainer.device_step(images, labels)
        finally:
            for (group, _), host_lr in zip(groups, host_lrs):
                group["lr"] = host_lr

    def _warm_up(self) -> None:
        if not self.capture:
            self._body(*self.inputs)
            return
        stream, main = torch.cuda.Stream(self.trainer.device), torch.cuda.current_stream(self.trainer.device)
        stream.wait_stream(main)
        with torch.cuda.stream(stream):
            self._body(*self.inputs)
        main.wait_stream(stream)

    def _freeze(self) -> None:
        """Keep the optimiser state tensors from now on; capture the body (CUDA) and run this step."""
        self.kept = [
            {p: {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} for p, state in opt.state.items()}
            for opt in self.trainer.optimizers
        ]
        if not self.capture:
            self._body(*self.inputs)
            return
        for opt in self.trainer.optimizers:
            opt.zero_grad(set_to_none=True)  # the gradients are allocated inside the graph's memory pool
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._body(*self.inputs)
        except RuntimeError as err:  # e.g. an operator that reads a device value on the host
            if self.strict:
                raise
            log.warning("trainer.cuda_graph=auto: the training step could not be captured (%s); eager steps.", err)
            self.capture = False
            self._body(*self.inputs)
            return
        self.graph = graph
        self.captures += 1
        graph.replay()

    def _restore_state(self) -> None:
        """Put the kept optimiser state tensors back, holding the values now in the optimiser's state."""
        for opt, kept in zip(self.trainer.optimizers, self.kept):
            for param, tensors in kept.items():
                state = opt.state[param]
                for key, tensor in tensors.items():
                    current = state.get(key)
                    if current is tensor:
                        continue
                    if current is None:
                        tensor.zero_()  # a cleared state (momentum reset): a fresh state starts at zero
                    else:
                        tensor.copy_(current)  # a loaded state (resume)
                    state[key] = tensor
