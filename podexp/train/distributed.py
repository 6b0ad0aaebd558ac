"""Data-parallel training: ``torchrun --nproc_per_node=N train.py ...`` runs one process per device.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them everything here is a no-op and training is
single-process. Under torchrun:

* the process group uses NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``) and gloo on the CPU;
* ``dataset.batch_size`` stays the *global* batch: each rank loads ``batch_size / WORLD_SIZE`` images of
  its own shard of the epoch's permutation, so the optimisation matches a single process;
* the model is wrapped in DistributedDataParallel (optionally with SyncBatchNorm, ``trainer.sync_bn``);
  the loss's own parameters (softmax W, centres) get their gradients averaged by hooks, so every rank
  applies the same update to them too;
* epoch metrics and the loss's ``on_epoch_end`` statistics (NaC/POD's v) are summed over ranks;
* only rank 0 writes files and logs at INFO; every rank reads and writes rank 0's run folder, whatever
  folder Hydra gave it.
"""

from __future__ import annotations

import logging
import os
import typing
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from podexp.errors import ConfigError
from podexp.registry import options_of
from podexp.settings import CompileMode, TrainerSettings


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over all ranks, as a new tensor (``tensor`` itself on one process)."""
        if not self.enabled:
            return tensor
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    def for_eval(self, model: nn.Module) -> nn.Module:
        """The module to evaluate with: without DDP (ranks may hold different numbers of test batches,
        and DDP's forward is collective), after copying rank 0's BatchNorm statistics to every rank."""
        if not self.enabled:
            return model
        bare = unwrap(model)
        for buffer in bare.buffers():
            dist.broadcast(buffer, src=0)
        return bare


def from_env(environ=os.environ) -> Dist:
    return Dist(int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)), int(environ.get("LOCAL_RANK", 0)))


def init(ctx: Dist, device: torch.device) -> torch.device:
    """Join the torchrun job, if ``ctx`` is part of one; returns the device this process trains on."""
    if not ctx.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    return device


def rank0_path(ctx: Dist, path: Path) -> Path:
    """Rank 0's ``path``, on every rank. Hydra names each rank's run folder by that process's own start
    time, so without a fixed ``hydra.run.dir`` the ranks' folders can differ; the run (checkpoints,
    metrics, result) lives in rank 0's, and every rank must read its resume state from there."""
    if not ctx.enabled:
        return path
    shared = [str(path)]
    dist.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(module: nn.Module, ctx: Dist) -> None:
    """Average each parameter's gradient over ranks as soon as backward has accumulated it.

    For modules outside DDP (the loss's classifier or centres). A process group of their own keeps
    these collectives apart from DDP's bucketed all-reduces.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    if not ctx.enabled or not params:
        return
    group = dist.new_group()

    def hook(param: torch.Tensor) -> None:
        dist.all_reduce(param.grad, group=group)
        param.grad.div_(ctx.world_size)

    for param in params:
        param.register_post_accumulate_grad_hook(hook)


COMPILE_MODES = typing.get_args(CompileMode)


def compile_mode(setting) -> str | None:
    """``trainer.compile`` as a ``torch.compile`` mode: false/null -> None (eager), true -> "default",
    or one of ``COMPILE_MODES`` by name ("reduce-overhead" replays the step's kernels as CUDA graphs)."""
    if setting is None or setting is False:
        return None
    problem = options_of(TrainerSettings)["compile"].problem("trainer.compile", setting)
    if problem:
        raise ConfigError(problem)
    return "default" if setting is True else setting


def prepare_model(
    model: nn.Module, loss_fn: nn.Module, ctx: Dist, device: torch.device, *, sync_bn: bool = False, compile=False
) -> nn.Module:
    """SyncBatchNorm -> DDP (under torchrun) -> torch.compile (``trainer.compile``), in that order."""
    if ctx.enabled:
        if sync_bn:
            if device.type != "cuda":
                raise ConfigError(
                    "trainer.sync_bn=true needs CUDA (PyTorch's SyncBatchNorm runs on GPUs "
                    "only). Set trainer.sync_bn=false for CPU runs."
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        average_gradients(loss_fn, ctx)
    mode = compile_mode(compile)
    if mode is not None:
        model = torch.compile(model, mode=mode)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile and DDP wrappers (whose state_dict keys are unprefixed)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, DistributedDataParallel):
            model = model.module
        else:
            return model
