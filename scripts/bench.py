"""Training throughput: the podexp trainer against a loop written like the authors' code.

    python scripts/bench.py                      # preset for the device found (cpu or cuda)
    python scripts/bench.py --json bench.json    # the same figures as JSON

All sides train the same ``LatentNet`` (backbone -> FC1) and the same loss module on the same synthetic
CIFAR-shaped images (uint8, 3x32x32, a random prototype per class plus noise: real CIFAR cannot be
fetched everywhere) with SGD and the same batch size.

* podexp: ``Trainer.step`` as ``train.py`` runs it, fed by the GPU-resident ``TensorLoader`` (crop + flip +
  normalise on the device), channels_last, bf16 autocast and fused SGD on CUDA, metrics kept on the
  device, and on one GPU the whole step replayed as a CUDA graph (``trainer.cuda_graph=auto``; train.py's
  default stays false until ``make gpu-check`` has run on a GPU).
* tuned_eager: the same without the CUDA graph (``trainer.cuda_graph=false``).
* reference: a torchvision ``DataLoader`` over PIL images with RandomCrop(32, 4) + RandomHorizontalFlip +
  ToTensor + Normalize, fp32, ``.item()`` on the loss and the accuracy every step (as the authors' loop).

``speedup_vs_reference`` and ``speedup_vs_tuned_eager`` follow docs/benchmarks.md: whole epochs in
alternating rounds after a first epoch whose extra time is reported as a one-time cost, with TFLOP/s,
GPU-busy fraction and the reference's flags beside them. Also reported: each loss's podexp step time
relative to softmax (same backbone and batch), peak memory and, on CUDA, one real ``Trainer.train_epoch``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from podexp.compose import build_model_and_loss, build_optimization
from podexp.data import Loaders
from podexp.data.loaders import TensorLoader
from podexp.defaults import CONFIG_DIR as CONFIGS
from podexp.losses import available as available_losses
from podexp.models import BACKBONES
from podexp.settings import TrainerSettings
from podexp.train.distributed import COMPILE_MODES, Dist, prepare_model
from podexp.train.loop import Trainer

NUM_CLASSES = OmegaConf.load(CONFIGS / "dataset" / "cifar100.yaml").num_classes
PRESETS = {
    "cpu": dict(
        backbones=["small_cnn", "resnet50"],
        batch=32,
        steps={"small_cnn": 8, "resnet50": 2},
        warmup=1,
        rounds=5,
        train_size=2048,
        ref_workers=0,
        epoch=False,
        compile=[],
    ),
    "cuda": dict(
        backbones=["resnet50", "densenet121", "mobilenetv2"],
        batch=128,
        steps={"resnet50": 30, "densenet121": 30, "mobilenetv2": 30},
        warmup=10,
        rounds=5,
        train_size=50_000,
        ref_workers=4,
        epoch=True,
        compile=["resnet50"],
    ),
}
STEPS_PER_EPOCH = 50_000 // 128  # 390 full batches of the paper's CIFAR epoch
GRAPHED = ("trainer.cuda_graph=auto",)  # the CUDA graph where it can work (train.py's default is false until measured)
TUNED_EAGER = ("trainer.cuda_graph=false",)  # bf16, channels_last, fused SGD, device data, no CUDA graph


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_cifar(n: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n x 32 x 32 x 3 uint8 images, n int64 labels) in torchvision's CIFAR layout: a random prototype
    per class plus pixel noise, so training is a real (learnable) problem and stays finite."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n, dtype=np.int64)
    prototypes = rng.uniform(0, 255, (num_classes, 32, 32, 3))
    noisy = prototypes[labels] + rng.normal(0, 60, (n, 32, 32, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8), labels


def bench_config(backbone: str, loss_name: str, *overrides: str):
    """The config ``train.py dataset=cifar100 backbone=B loss=L`` composes, with lr 0.02 (the synthetic
    images stay finite under every loss), no progress bars and ``overrides`` on top."""
    from hydra import compose, initialize_config_dir

    overrides = [
        "dataset=cifar100",
        f"backbone={backbone}",
        f"loss={loss_name}",
        "optim.lr=0.02",
        "trainer.progress=false",
        *overrides,
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def make_model_and_loss(cfg, device: torch.device):
    torch.manual_seed(0)
    return build_model_and_loss(cfg, cfg.dataset.num_classes, device)


class PodexpRunner:
    """``Trainer.step`` over the real ``TensorLoader``, with model, loss and optimisers built by
    ``podexp.compose`` as ``train.py`` builds them."""

    label = "podexp"

    def __init__(self, backbone, loss_name, images, labels, batch, device, compile_mode=False, overrides=GRAPHED):
        self.device = device
        cfg = bench_config(backbone, loss_name, f"trainer.compile={str(compile_mode).lower()}", *overrides)
        model, loss = make_model_and_loss(cfg, device)
        data = cfg.dataset
        train = TensorLoader(
            torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(labels),
            batch,
            list(data.mean),
            list(data.std),
            train=True,
            crop_padding=data.augment.crop_padding,
            hflip=data.augment.hflip,
            seed=0,
            device=device,
            channels_last=bool(cfg.trainer.channels_last),
        )
        optimizers, schedulers = build_optimization(cfg, model, loss, len(train), device)
        settings = TrainerSettings.from_config(cfg.trainer)
        model = prepare_model(model, loss, Dist(), device, compile=settings.compile)
        self.trainer = Trainer(
            model, loss, Loaders(train, train, data.num_classes, []), optimizers, schedulers, settings, device=device
        )
        self.trainer.model.train()
        self.trainer.loss.train()
        self.epoch, self.batches = 0, iter(())

    def flags(self) -> dict:
        trainer = self.trainer
        return {
            "cuda_graph": trainer.graph is not None,
            "bf16_autocast": trainer.use_amp,
            "channels_last": bool(trainer.settings.channels_last),
            "fused_optimizer": trainer.guard.sync_free,
            "data": "uint8 split on the device, crop + flip + normalise there (TensorLoader)",
            "compile": trainer.settings.compile,
        }

    def next_batch(self):
        """The loader's next batch, starting its next epoch when one ends."""
        batch = next(self.batches, None)
        if batch is None:
            self.trainer.loaders.train.set_epoch(self.epoch)
            self.epoch += 1
            self.batches = iter(self.trainer.loaders.train)
            batch = next(self.batches)
        return batch

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.trainer.step(*self.next_batch())

    def epoch_seconds(self) -> float:
        """Wall time of one whole ``Trainer.train_epoch`` (all batches of the loader, metrics read once)."""
        synchronize(self.device)
        start = time.perf_counter()
        self.trainer.train_epoch(self.epoch)
        synchronize(self.device)
        self.epoch += 1
        return time.perf_counter() - start


class CifarLikePIL(torch.utils.data.Dataset):
    """An in-memory dataset handing out PIL images, as ``torchvision.datasets.CIFAR100`` does."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


class ReferenceRunner:
    """The authors' style: DataLoader + PIL transforms, fp32, a host read of loss and accuracy per step."""

    label = "reference"

    def __init__(self, backbone, loss_name, images, labels, batch, device, workers):
        from torchvision import transforms

        self.device = device
        cfg = bench_config(backbone, loss_name, "trainer.channels_last=false")  # NCHW, as the authors' code
        self.model, self.loss_fn = make_model_and_loss(cfg, device)
        transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(list(cfg.dataset.mean), list(cfg.dataset.std)),
            ]
        )
        self.data = torch.utils.data.DataLoader(
            CifarLikePIL(images, labels, transform),
            batch_size=batch,
            shuffle=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
            persistent_workers=workers > 0,
        )
        params = [{"params": self.model.parameters()}, *self.loss_fn.param_groups(cfg.optim.lr)]
        self.optimizer = torch.optim.SGD(
            params, lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay
        )
        self.model.train()
        self.loss_fn.train()
        self.batches = iter(())
        self.running_loss, self.correct = 0.0, 0

    def _next_batch(self):
        batch = next(self.batches, None)
        if batch is None:
            self.batches = iter(self.data)
            batch = next(self.batches)
        return batch

    def flags(self) -> dict:
        """How this loop runs, recorded beside its times (the global backend flags are the process's)."""
        return {
            "dataloader_workers": self.data.num_workers,
            "pin_memory": self.data.pin_memory,
            "precision": "fp32 (PyTorch's default TF32 settings below)",
            "memory_format": "NCHW",
            "optimizer": "torch.optim.SGD, default implementation (foreach on CUDA)",
            "host_reads_per_step": 2,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        }

    def loader_seconds(self, steps: int) -> float:
        """Wall time of ``steps`` batches of the DataLoader alone, copied to the device: if it comes near
        the training epoch's time, the workers starve the GPU and the reference is loader-bound."""
        synchronize(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            images, labels = self._next_batch()
            images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        synchronize(self.device)
        return time.perf_counter() - start

    def run(self, steps: int) -> None:
        for _ in range(steps):
            images, labels = self._next_batch()
            images, labels = images.to(self.device), labels.to(self.device)
            self.optimizer.zero_grad()
            z = self.model(images)
            loss = self.loss_fn(z, labels)
            loss.backward()
            self.optimizer.step()
            self.running_loss += loss.item()
            self.correct += self.loss_fn.predict(z).argmax(1).eq(labels).sum().item()


def timed(runner, steps: int) -> float:
    """Seconds per step over ``steps`` steps, with the device drained before and after."""
    synchronize(runner.device)
    start = time.perf_counter()
    runner.run(steps)
    synchronize(runner.device)
    return (time.perf_counter() - start) / steps


def interleaved(runners: dict, steps: int, warmup: int, rounds: int) -> dict[str, float]:
    """Median seconds per step of each runner over ``rounds`` alternating rounds, after warm-up."""
    for runner in runners.values():
        runner.run(warmup)
    samples = {name: [] for name in runners}
    for round_index in range(rounds):
        order = list(runners) if round_index % 2 == 0 else list(reversed(runners))
        for name in order:
            samples[name].append(timed(runners[name], steps))
    return {name: statistics.median(values) for name, values in samples.items()}


def epoch_comparison(runners: dict, epoch_steps: int, rounds: int, baselines=("reference", "tuned_eager")) -> dict:
    """The honest comparison (docs/benchmarks.md): each runner first trains one epoch of ``epoch_steps``
    steps alone (its one-time costs: cuDNN autotuning, CUDA-graph capture, compilation, worker start-up),
    then ``rounds`` rounds in which every runner trains one whole epoch, the order reversed every other
    round. Returns the first and the median steady epoch's seconds, the one-time cost (first minus
    steady), and ``speedup_vs_<baseline>`` = the median over rounds of baseline epoch / podexp epoch."""
    first = {name: epoch_steps * timed(runner, epoch_steps) for name, runner in runners.items()}
    epochs = {name: [] for name in runners}
    for round_index in range(rounds):
        order = list(runners) if round_index % 2 == 0 else list(reversed(runners))
        for name in order:
            epochs[name].append(epoch_steps * timed(runners[name], epoch_steps))
    steady = {name: statistics.median(values) for name, values in epochs.items()}
    result = {
        "epoch_steps": epoch_steps,
        "epoch_rounds": rounds,
        "epoch_s": steady,
        "epoch_s_rounds": epochs,
        "first_epoch_s": first,
        "one_time_s": {name: first[name] - steady[name] for name in runners},
    }
    for baseline in baselines:
        if baseline in runners:
            ratios = [b / p for b, p in zip(epochs[baseline], epochs["podexp"])]
            result[f"speedup_vs_{baseline}"] = statistics.median(ratios)
    return result


def paired_ratios(runners: dict, baseline: str, steps: int, warmup: int, rounds: int) -> tuple[dict, dict]:
    """Each runner's time per step relative to ``baseline``'s, the two timed back to back (alternating
    which goes first) in every round: the median of the per-round ratios, so a load that drifts over the
    minutes of the comparison cancels out. Returns (median ratio, median seconds per step) per runner."""
    for runner in runners.values():
        runner.run(warmup)
    ratios = {name: [] for name in runners if name != baseline}
    seconds = {name: [] for name in runners}
    for round_index in range(rounds):
        for name in ratios:
            pair = (baseline, name) if round_index % 2 == 0 else (name, baseline)
            times = {side: timed(runners[side], steps) for side in pair}
            ratios[name].append(times[name] / times[baseline])
            for side, value in times.items():
                seconds[side].append(value)
    if not seconds[baseline]:  # nothing to compare with
        seconds[baseline].append(timed(runners[baseline], steps))
    medians = {name: statistics.median(values) for name, values in ratios.items()}
    return {baseline: 1.0, **medians}, {name: statistics.median(values) for name, values in seconds.items()}


def step_profile(runner, steps: int) -> dict:
    """What one step asks of the host and the device, from the profiler over ``steps`` steps.

    ``ops_per_step``: ATen operators dispatched by Python or the autograd engine (not counting the ones
    they call), each a trip through the dispatcher; ``kernels_per_step`` (CUDA): device kernels and
    copies launched; ``gpu_busy_ms_per_step``: their summed duration. Busy time far below the step's
    wall time means the device waits for the host to launch work (the step is launch-bound).
    """
    from torch.autograd import DeviceType

    device = runner.device
    events = profiled_events(runner, steps)

    def dispatched(event) -> bool:
        parent = event.cpu_parent
        return event.name.startswith("aten::") and (parent is None or not parent.name.startswith("aten::"))

    kernels = [e for e in events if e.device_type == DeviceType.CUDA]
    report = {"ops_per_step": sum(map(dispatched, events)) / steps}
    if device.type == "cuda":
        report["kernels_per_step"] = len(kernels) / steps
        report["gpu_busy_ms_per_step"] = sum(e.self_device_time_total for e in kernels) / 1e3 / steps
    return report


def profiled_events(runner, steps: int) -> list:
    """The profiler's events of ``steps`` steps of ``runner`` (CPU operators, and CUDA kernels on a GPU)."""
    from torch.profiler import ProfilerActivity, profile

    device = runner.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    synchronize(device)
    with profile(activities=activities) as prof:
        runner.run(steps)
        synchronize(device)
    return prof.events()


def step_flops(runner) -> float:
    """Floating-point operations of one step (``FlopCounterMode``: matmuls and convolutions, forward and
    backward; a multiply-add counts 2). Run on an eager step: a replayed CUDA graph dispatches nothing."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        runner.run(1)
    return float(counter.get_total_flops())


def top_kernels(runner, steps: int, count: int = 10) -> list[dict]:
    """The ``count`` costliest kernels of ``steps`` steps: on CUDA device kernels by summed GPU time, on the
    CPU the ATen operators by self CPU time (``ms_per_step`` and ``calls_per_step`` each)."""
    from torch.autograd import DeviceType

    device = runner.device
    totals: dict[str, list] = {}
    for event in profiled_events(runner, steps):
        if device.type == "cuda":
            if event.device_type != DeviceType.CUDA:
                continue
            time_us = event.self_device_time_total
        elif event.name.startswith("aten::"):
            time_us = event.self_cpu_time_total
        else:
            continue
        entry = totals.setdefault(event.name, [0.0, 0])
        entry[0] += time_us
        entry[1] += 1
    ranked = sorted(totals.items(), key=lambda item: -item[1][0])[:count]
    return [
        {"name": name[:160], "ms_per_step": us / 1e3 / steps, "calls_per_step": calls / steps}
        for name, (us, calls) in ranked
    ]


def peak_memory_mb(make_runner, device: torch.device, steps: int = 3) -> float | None:
    """CUDA: the largest allocation during a few steps of a runner built alone. CPU: None (see ru_maxrss)."""
    if device.type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    runner = make_runner()
    runner.run(steps)
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20
    del runner
    torch.cuda.empty_cache()
    return peak


def bench_backbone(backbone, args, device, images, labels) -> dict:
    steps = args.steps or PRESETS[args.preset]["steps"][backbone]
    batch = args.batch

    def podexp(loss_name="softmax", compile_mode=False):
        return PodexpRunner(backbone, loss_name, images, labels, batch, device, compile_mode)

    def reference():
        return ReferenceRunner(backbone, "softmax", images, labels, batch, device, args.ref_workers)

    record = {
        "backbone": backbone,
        "batch": batch,
        "peak_mem_mb": {"podexp": peak_memory_mb(podexp, device), "reference": peak_memory_mb(reference, device)},
    }
    runners = {
        "podexp": podexp(),  # trainer.cuda_graph=auto: a CUDA graph on one GPU
        "tuned_eager": PodexpRunner(backbone, "softmax", images, labels, batch, device, False, TUNED_EAGER),
        "reference": reference(),
    }
    epoch_steps = args.epoch_steps or (STEPS_PER_EPOCH if device.type == "cuda" else steps)
    record.update(epoch_comparison(runners, epoch_steps, args.rounds))
    record["meets_definition"] = args.rounds >= 5 and epoch_steps >= len(runners["podexp"].trainer.loaders.train)
    record["ms_per_step"] = {k: 1e3 * v / epoch_steps for k, v in record["epoch_s"].items()}
    record["images_per_s"] = {k: batch * epoch_steps / v for k, v in record["epoch_s"].items()}
    record["step_profile"] = {k: step_profile(r, min(steps, 5)) for k, r in runners.items()}
    flops = step_flops(runners["tuned_eager"])
    record["gflop_per_step"] = flops / 1e9
    record["tflops"] = {k: flops / (v / 1e3) / 1e12 for k, v in record["ms_per_step"].items()}
    record["flags"] = {
        "podexp": runners["podexp"].flags(),
        "tuned_eager": runners["tuned_eager"].flags(),
        "reference": runners["reference"].flags(),
    }
    loader_s = runners["reference"].loader_seconds(epoch_steps)
    record["reference_loader"] = {
        "epoch_s": loader_s,
        "fraction_of_training_epoch": loader_s / record["epoch_s"]["reference"],
    }
    if device.type == "cuda":
        record["gpu_busy_fraction"] = {
            k: record["step_profile"][k]["gpu_busy_ms_per_step"] / record["ms_per_step"][k] for k in runners
        }
    del runners
    if backbone in args.compile:
        for mode in args.compile_modes:
            label = f"podexp_compile_{mode}"
            compiled = {label: podexp(compile_mode=mode)}
            record["ms_per_step"][label] = 1e3 * interleaved(compiled, steps, args.warmup, args.rounds)[label]
    if args.epoch:
        runner = podexp()
        runner.run(args.warmup)
        record["epoch_s_measured"] = {"podexp": runner.epoch_seconds(), "steps": len(runner.trainer.loaders.train)}
    losses = [name for name in args.losses if name in available_losses()]
    if backbone in args.loss_backbones and losses:
        runners, failed = {}, {}
        for name in losses:
            try:
                runners[name] = podexp(name)
            except Exception as err:  # a loss that cannot be built here is reported, not fatal
                failed[name] = f"{err.__class__.__name__}: {err}"
        ratios, costs = paired_ratios(runners, "softmax", steps, args.warmup, args.rounds)
        if failed:
            record["loss_build_errors"] = failed
        record["loss_ms_per_step"] = {k: 1e3 * v for k, v in costs.items()}
        record["loss_step_vs_softmax"] = ratios
        if "pod" in ratios:
            record["pod_step_vs_softmax"] = ratios["pod"]
    return record


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="sizes (default: from the device)")
    parser.add_argument("--backbones", nargs="+", help="default: the preset's")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, help="timed steps per round (default: the preset's)")
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--rounds", type=int, help="rounds of whole epochs (the definition asks >= 5)")
    parser.add_argument(
        "--epoch-steps", type=int, help="steps of one timed epoch (default: 390 on CUDA, --steps on the CPU)"
    )
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--ref-workers", type=int, help="DataLoader workers of the reference loop")
    parser.add_argument(
        "--losses", nargs="+", default=None, help="losses compared with softmax (default: every registered loss)"
    )
    parser.add_argument("--loss-backbones", nargs="+", help="backbones for the loss comparison (default: the first)")
    parser.add_argument(
        "--compile", nargs="*", help="also time torch.compile on these backbones (default: the preset's)"
    )
    parser.add_argument(
        "--compile-modes",
        nargs="+",
        default=["default", "reduce-overhead"],
        choices=COMPILE_MODES,
        help="torch.compile modes to time (trainer.compile=MODE)",
    )
    parser.add_argument(
        "--epoch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time one real 50k-image epoch (default on CUDA)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--breakdown", action="store_true", help="only time the parts of a podexp step")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    args.preset = args.preset or device.type
    preset = PRESETS[args.preset]
    for key in ("backbones", "batch", "warmup", "rounds", "train_size", "ref_workers", "epoch", "compile"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.losses = args.losses or available_losses()
    if "softmax" not in args.losses:
        args.losses = ["softmax", *args.losses]
    args.loss_backbones = args.loss_backbones or args.backbones[:1]
    return args, device


def breakdown(backbone, args, device, images, labels) -> dict:
    """Where a podexp step's time goes: loader alone, model forward+backward, + optimiser, whole step,
    and (CUDA) the profiler's top operators."""
    runner = PodexpRunner(backbone, "softmax", images, labels, args.batch, device)
    trainer, steps = runner.trainer, args.steps or PRESETS[args.preset]["steps"][backbone]
    runner.run(args.warmup)
    fixed_images, fixed_labels = runner.next_batch()

    def loader_only(n):
        for _ in range(n):
            runner.next_batch()

    def forward_backward(n, optimise=False):
        for _ in range(n):
            with trainer.autocast():
                z = trainer.model(fixed_images)
            trainer.loss(z, fixed_labels).backward()
            if optimise:
                trainer.optimizers[0].step()
            trainer.optimizers[0].zero_grad(set_to_none=True)

    def seconds(fn):
        synchronize(device)
        start = time.perf_counter()
        fn(steps)
        synchronize(device)
        return 1e3 * (time.perf_counter() - start) / steps

    parts = {
        "loader": seconds(loader_only),
        "forward_backward": seconds(forward_backward),
        "forward_backward_sgd": seconds(lambda n: forward_backward(n, True)),
        "train_step": seconds(runner.run),
    }
    print(f"breakdown {backbone} b{args.batch} (ms/step): {parts}", flush=True)
    if device.type == "cuda":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            runner.run(5)
            synchronize(device)
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=15))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return parts


def print_table(report: dict) -> None:
    print(f"\n{report['device']}  ({report['date']}, torch {report['torch']})")
    for rec in report["backbones"]:
        if "skipped" in rec:
            print(f"{rec['backbone']:>12}: skipped ({rec['skipped']})")
            continue
        ms, ips, tflops = rec["ms_per_step"], rec["images_per_s"], rec["tflops"]
        print(
            f"{rec['backbone']:>12} b{rec['batch']}, {rec['epoch_rounds']} rounds of {rec['epoch_steps']}-step "
            f"epochs{'' if rec['meets_definition'] else ' (short of the definition)'}: speedup_vs_reference "
            f"x{rec['speedup_vs_reference']:.2f}, speedup_vs_tuned_eager x{rec['speedup_vs_tuned_eager']:.2f}"
        )
        for side in ("podexp", "tuned_eager", "reference"):
            print(
                f"{'':>12}  {side:>11}: {ms[side]:8.2f} ms/step {ips[side]:8.0f} img/s {tflops[side]:7.2f} TFLOP/s"
                f", epoch {rec['epoch_s'][side]:.2f} s + one-time {rec['one_time_s'][side]:.2f} s"
            )
        loader = rec["reference_loader"]
        print(f"{'':>12}  reference DataLoader alone: {100 * loader['fraction_of_training_epoch']:.0f}% of its epoch")
        compiled = {k.removeprefix("podexp_compile_"): v for k, v in ms.items() if k.startswith("podexp_compile_")}
        if compiled:
            print(f"{'':>12}  podexp compiled (ms/step): " + ", ".join(f"{k} {v:.2f}" for k, v in compiled.items()))
        for side, prof in rec["step_profile"].items():
            line = f"{'':>12}  {side} per step: {prof['ops_per_step']:.0f} ops dispatched"
            if "kernels_per_step" in prof:
                line += (
                    f", {prof['kernels_per_step']:.0f} kernels, GPU busy {prof['gpu_busy_ms_per_step']:.2f} ms "
                    f"({100 * rec['gpu_busy_fraction'][side]:.0f}% of the step)"
                )
            print(line)
        if "epoch_s_measured" in rec:
            print(f"{'':>12}  one Trainer.train_epoch: {rec['epoch_s_measured']['podexp']:.2f} s")
        mem = rec["peak_mem_mb"]
        if mem["podexp"] is not None:
            print(f"{'':>12}  peak memory: podexp {mem['podexp']:.0f} MiB, reference {mem['reference']:.0f} MiB")
        if "loss_step_vs_softmax" in rec:
            costs = ", ".join(f"{k} {v:.3f}" for k, v in rec["loss_step_vs_softmax"].items())
            print(f"{'':>12}  step time / softmax: {costs}")
    if report.get("max_rss_mb") is not None:
        print(f"process max RSS: {report['max_rss_mb']:.0f} MiB")


def main(argv=None) -> dict:
    args, device = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # train.py sets it; the authors' code did too
    images, labels = synthetic_cifar(args.train_size, NUM_CLASSES)
    report = {
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "backbones": [],
    }
    if args.breakdown:
        return {backbone: breakdown(backbone, args, device, images, labels) for backbone in args.backbones}
    for backbone in args.backbones:
        if backbone not in BACKBONES:
            report["backbones"].append({"backbone": backbone, "skipped": "not registered in podexp.models"})
            continue
        report["backbones"].append(bench_backbone(backbone, args, device, images, labels))
        print(json.dumps(report["backbones"][-1]), flush=True)
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
