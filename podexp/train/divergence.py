"""Catch a non-finite loss or gradient before it reaches the weights (``trainer.on_nan``).

A step is *bad* when its loss or any of its gradients holds a non-finite value (nan/inf). The gradients are
checked by one fused op, ``torch._amp_foreach_non_finite_check_and_unscale_`` with scale 1 (the check
``torch.amp.GradScaler`` does; multiplying by 1 leaves every gradient unchanged), not by a norm per
gradient. The check never touches the weights:

* **Sync-free path** (every optimiser fused, i.e. CUDA): the flag stays on the device and is handed to
  the fused SGD/AdamW kernel as ``found_inf``, exactly as ``torch.amp.GradScaler`` does, so the update
  (weights, momentum, Adam moments and step count) is a no-op for a bad step. The host reads the flag
  every ``trainer.nan_check_every`` steps and at the end of the epoch, never per step.
* **Per-step path** (foreach/for-loop optimisers, i.e. the CPU): the flag is read at once and a bad
  step does not call ``optimizer.step()``.

``on_nan=stop`` (default) raises ``DivergenceError`` naming the first bad epoch/step/objective, its
loss and whether the gradient was the culprit; nothing is checkpointed after it, so the run folder keeps
the last good checkpoint. On the sync-free path the steps between the bad one and the next read run on
(bad ones are no-ops) but are discarded with the run. ``on_nan=skip`` skips bad steps and counts them
(``skipped_steps`` in the epoch's metrics row); a skipped batch is left out of the epoch's train metrics
and every buffer of model and loss (BatchNorm statistics and counters, NaC/POD's norm sums) is put
back to its value before the batch (a copy per step: only in skip mode). In both modes the
learning-rate schedule advances as usual. An epoch that skips more than ``trainer.max_skip_fraction`` of
its steps has stopped learning: the run stops as diverged (``check_skip_fraction``).

At every epoch end and before a preemption checkpoint (``Trainer.check_finite``), every floating tensor
of model and loss (parameters and buffers: BatchNorm statistics, NaC/POD's ``v``) must be finite
(``non_finite_tensors``), so ``last.pt`` is always a good checkpoint and no logged epoch holds such a
state: a finite loss and gradient can still push a buffer to inf.
"""

from __future__ import annotations

import torch

from podexp.errors import PodexpError

POLICIES = ("stop", "skip")


class DivergenceError(PodexpError):
    """Training produced non-finite values (``trainer.on_nan=stop``), skipped too many steps
    (``trainer.max_skip_fraction``) or left a non-finite tensor in model or loss. Not bad input but a
    failed run: ``failed.json`` says ``status: diverged`` and the exit code is 1."""

    status = "diverged"
    exit_code = 1


def check_skip_fraction(skipped: int, steps: int, max_fraction: float, epoch: int) -> None:
    """Stop the run when epoch ``epoch`` (0-based) skipped more than ``max_fraction`` of its ``steps``."""
    if skipped <= max_fraction * steps:
        return
    raise DivergenceError(
        f"Training diverged: epoch {epoch + 1} skipped {skipped} of its {steps} steps (non-finite loss or "
        f"gradient), more than trainer.max_skip_fraction={max_fraction} of them, so the run stopped "
        f"learning. Nothing was saved after epoch {epoch}, so the run folder keeps the last good "
        f"checkpoint. Lower optim.lr, add warm-up (sched.warmup_epochs), check the loss's "
        f"hyper-parameters, or raise trainer.max_skip_fraction (up to 1) to go on anyway."
    )


def non_finite_tensors(**modules: torch.nn.Module) -> list[str]:
    """Names (``model.bn.running_var``) of the floating tensors of ``modules`` (parameters and buffers)
    that hold a nan or inf; one host read when all are finite."""
    named = [
        (f"{owner}.{name}", tensor)
        for owner, module in modules.items()
        for name, tensor in module.state_dict(keep_vars=True).items()
        if tensor.is_floating_point()
    ]
    if not named:
        return []
    finite = torch.stack([tensor.detach().isfinite().all() for _, tensor in named])
    if bool(finite.all()):
        return []
    return [name for (name, _), ok in zip(named, finite.tolist()) if not ok]


def check_finite_state(epoch: int, step_in_epoch: int, **modules: torch.nn.Module) -> None:
    """Stop the run (``DivergenceError`` naming them) when model or loss holds a non-finite tensor."""
    bad = non_finite_tensors(**modules)
    if not bad:
        return
    where = f"step {step_in_epoch} of epoch {epoch + 1}" if step_in_epoch else f"epoch {epoch}"
    shown = ", ".join(bad[:10]) + (f" ... ({len(bad) - 10} more)" if len(bad) > 10 else "")
    raise DivergenceError(
        f"Training diverged: after {where} these tensors are not finite: {shown}. They were not "
        f"checkpointed: the run folder's last.pt, if any, is still the last good checkpoint. Lower optim.lr or "
        f"optim.momentum, add warm-up (sched.warmup_epochs), or check the loss's hyper-parameters."
    )


def _grads(optimizer) -> list[torch.Tensor]:
    return [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]


def grads_non_finite(grads: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """A 0-dim bool device tensor: whether any value of ``grads`` is nan or inf. One fused op per device
    and dtype (``GradScaler``'s check, with an unscale factor of exactly 1), no host read."""
    found, one = torch.zeros((), device=device), torch.ones((), device=device)  # 0-dim, as GradScaler
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for grad in grads:
        by_dtype.setdefault(grad.dtype, []).append(grad)
    for same_dtype in by_dtype.values():
        torch._amp_foreach_non_finite_check_and_unscale_(same_dtype, found, one)
    return found > 0


def _zero_momentum_buffers(optimizer) -> None:
    """Fused SGD's first step fills its momentum buffer with ``empty_like`` and only then applies the
    ``found_inf`` mask: a skipped first step would leave garbage behind. A zero buffer makes the first
    step identical (0 * momentum + g = g) and safe to skip."""
    if not isinstance(optimizer, torch.optim.SGD) or optimizer.state:  # buffers exist after a step
        return
    for group in optimizer.param_groups:
        if group["momentum"]:
            for p in group["params"]:
                optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p))


class NonFiniteGuard:
    def __init__(
        self,
        policy: str,
        optimizers,
        buffer_owners,
        steps_per_epoch: int,
        global_step: int,
        check_every: int,
        device: torch.device,
    ):
        self.policy, self.steps_per_epoch, self.check_every = policy, steps_per_epoch, max(1, check_every)
        self.sync_free = all(group.get("fused") for opt in optimizers for group in opt.param_groups)
        self.buffer_owners = buffer_owners
        self.device = device
        self.step = torch.full((), float(global_step), dtype=torch.float64, device=device)
        # first bad step of the run: (global step, loss, gradient non-finite, objective); nan = none yet
        self.first_bad = torch.full((4,), float("nan"), dtype=torch.float64, device=device)
        self.skipped = torch.zeros((), dtype=torch.float64, device=device)  # this epoch
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._batch_bad = None

    # -- per batch ------------------------------------------------------------------------------
    def begin_batch(self) -> None:
        self._batch_bad = torch.zeros((), dtype=torch.bool, device=self.device)
        if self.policy == "skip":
            self._saved = [(b, b.detach().clone()) for owner in self.buffer_owners for b in owner.buffers()]

    def step_optimizer(self, optimizer, loss: torch.Tensor, objective: int) -> torch.Tensor:
        """``optimizer.step()`` unless ``loss`` or its gradients are non-finite; returns the device flag."""
        grad_bad = grads_non_finite(_grads(optimizer), loss.device)
        bad = grad_bad | ~torch.isfinite(loss.detach())
        self._record(bad, loss, grad_bad, objective)
        if self.sync_free:
            _zero_momentum_buffers(optimizer)
            optimizer.found_inf = bad.float()  # 0-dim: fused AdamW subtracts it from its 0-dim step counts
            try:
                optimizer.step()
            finally:
                del optimizer.found_inf
        elif bool(bad):
            self._raise_if_stop()
        else:
            optimizer.step()
        return bad

    def end_batch(self) -> None:
        bad = self._batch_bad
        self.skipped += bad.double()
        if self._saved and (self.sync_free or bool(bad)):
            for buffer, before in self._saved:
                buffer.copy_(torch.where(bad, before, buffer))
        self._saved = []
        self.step += 1

    def poll(self, steps_done_in_epoch: int) -> None:
        """The cheap-cadence read of the flag on the sync-free path (stop mode only)."""
        if self.sync_free and self.policy == "stop" and steps_done_in_epoch % self.check_every == 0:
            self._raise_if_stop()

    def end_epoch(self) -> int:
        """Raise (stop mode) if a bad step happened; return and reset this epoch's skipped count."""
        self._raise_if_stop()
        skipped = int(self.skipped)
        self.skipped.zero_()
        return skipped

    # -- state ----------------------------------------------------------------------------------
    def _record(self, bad, loss, grad_bad, objective) -> None:
        self._batch_bad = self._batch_bad | bad
        entry = torch.stack(
            [self.step, loss.detach().double().reshape(()), grad_bad.double(), self.step.new_full((), float(objective))]
        )
        self.first_bad.copy_(torch.where(bad & self.first_bad[0].isnan(), entry, self.first_bad))

    def _raise_if_stop(self) -> None:
        if self.policy != "stop":
            return
        step, loss, grad_bad, objective = self.first_bad.tolist()
        if step != step:  # nan: nothing bad so far
            return
        epoch, in_epoch = divmod(int(step), self.steps_per_epoch)
        culprit = "and a non-finite gradient norm" if grad_bad else "(the gradient was finite)"
        raise DivergenceError(
            f"Training diverged at epoch {epoch + 1}, step {in_epoch + 1} of {self.steps_per_epoch} "
            f"(global step {int(step)}, objective {int(objective)}): loss = {loss} {culprit}. The update "
            f"was not applied and nothing was saved after it, so the run folder keeps the last good "
            f"checkpoint. Lower optim.lr, add warm-up (sched.warmup_epochs), check the loss's "
            f"hyper-parameters, or set trainer.on_nan=skip to skip such steps."
        )

    def state_dict(self) -> dict:
        return {"step": self.step.cpu(), "skipped": self.skipped.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.step.copy_(state["step"])
        self.skipped.copy_(state["skipped"])
