"""One command for a GPU machine: the CUDA tests, then where the training step's time goes (``make gpu-check``).

    python scripts/gpu_check.py                    # CUDA: the full check (under 9 minutes on one H100)
    python scripts/gpu_check.py --tiny --out DIR   # any device, tiny sizes, seconds (tests/test_gpu_check.py)

Writes ``gpu_check.json`` and ``gpu_check.md`` (a short summary) to ``--out`` (default ``reports/gpu/``;
``make gpu-check GPU_OUT=...``). In order:

1. ``pytest tests/test_gpu.py`` (the CUDA loader, sync-free bf16 steps, graphed steps against eager ones,
   compile, a short run), in a subprocess; its summary line and exit code are recorded;
2. per backbone (ResNet-50, DenseNet-121, MobileNetV2 at batch 128, CIFAR-100 shape): ms/step of the eager
   step (``trainer.cuda_graph=false``: bf16, channels_last, fused SGD, device data), of the graphed step
   (``trainer.cuda_graph=true``; its warm-up and capture timed separately as a one-time cost), of the
   eager step in NCHW and in fp32 (what layout and precision cost), and of the reference loop
   (``scripts/bench.py``'s authors'-style loop), each after warm-up, in alternating rounds; per step the
   FLOPs (so TFLOP/s), the profiler's GPU-busy time and busy fraction of eager and graphed steps; one
   real graphed epoch (``Trainer.train_epoch`` over 390 batches); the top 10 kernels by GPU time.

Without CUDA the graphed variant is reported as unavailable with the reason (``trainer.cuda_graph=true``
needs CUDA); everything else runs. Speed claims live here and in docs/benchmarks.md, never in tests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/bench.py, also when loaded by a test

import bench  # noqa: E402

from podexp.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the clone: tests/test_gpu.py runs from it, reports/ lies in it
SIZES = {
    "full": dict(
        backbones=["resnet50", "densenet121", "mobilenetv2"],
        batch=128,
        steps=40,
        warmup=8,
        rounds=3,
        train_size=50_000,
        ref_workers=4,
        profile_steps=5,
    ),
    "tiny": dict(
        backbones=["small_cnn"], batch=4, steps=2, warmup=1, rounds=1, train_size=16, ref_workers=0, profile_steps=1
    ),
}
TESTS_TIMEOUT_S = 240  # pytest tests/test_gpu.py took 57 s on an H100 (docs/benchmarks.md)
VARIANTS = {  # trainer overrides of each podexp step variant
    "eager": ("trainer.cuda_graph=false",),
    "graphed": ("trainer.cuda_graph=true",),
    "eager_nchw": ("trainer.cuda_graph=false", "trainer.channels_last=false"),
    "eager_fp32": ("trainer.cuda_graph=false", "trainer.amp=false"),
}


def run_gpu_tests(out: Path) -> dict:
    """``pytest tests/test_gpu.py`` in a subprocess: exit code, duration and pytest's summary line."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_gpu.py"]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TESTS_TIMEOUT_S)
    except subprocess.TimeoutExpired as late:
        (out / "gpu_tests.log").write_text(str(late.stdout or ""))
        summary = f"timed out ({TESTS_TIMEOUT_S} s)"
        return {"exit_code": None, "seconds": time.perf_counter() - start, "summary": summary}
    (out / "gpu_tests.log").write_text(done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"exit_code": done.returncode, "seconds": time.perf_counter() - start, "summary": (lines or [""])[-1]}


def build_variants(backbone: str, size: dict, device, images, labels) -> tuple[dict, dict]:
    """(runners by variant name, why a variant could not be built)."""
    runners, unavailable = {}, {}
    for name, overrides in VARIANTS.items():
        try:
            runners[name] = bench.PodexpRunner(
                backbone, "softmax", images, labels, size["batch"], device, overrides=overrides
            )
        except ConfigError as err:
            unavailable[name] = str(err)
    runners["reference"] = bench.ReferenceRunner(
        backbone, "softmax", images, labels, size["batch"], device, size["ref_workers"]
    )
    return runners, unavailable


def one_time_seconds(runner, warmup: int) -> float:
    """Wall time of the first ``warmup`` steps (cuDNN autotuning; for the graphed step also its side-stream
    warm-up and the capture)."""
    bench.synchronize(runner.device)
    start = time.perf_counter()
    runner.run(warmup)
    bench.synchronize(runner.device)
    return time.perf_counter() - start


def check_backbone(backbone: str, size: dict, device, images, labels) -> dict:
    runners, unavailable = build_variants(backbone, size, device, images, labels)
    record = {"backbone": backbone, "batch": size["batch"], "unavailable": unavailable}
    record["one_time_s"] = {name: one_time_seconds(r, size["warmup"]) for name, r in runners.items()}
    seconds = bench.interleaved(runners, size["steps"], 0, size["rounds"])
    record["ms_per_step"] = {name: 1e3 * s for name, s in seconds.items()}
    flops = bench.step_flops(runners["eager"])
    record["gflop_per_step"] = flops / 1e9
    record["tflops"] = {name: flops / s / 1e12 for name, s in seconds.items()}
    profiled = [name for name in ("eager", "graphed") if name in runners]
    record["step_profile"] = {name: bench.step_profile(runners[name], size["profile_steps"]) for name in profiled}
    if device.type == "cuda":
        record["gpu_busy_fraction"] = {
            name: record["step_profile"][name]["gpu_busy_ms_per_step"] / record["ms_per_step"][name]
            for name in profiled
        }
    fastest = "graphed" if "graphed" in runners else "eager"
    record["top_kernels"] = {"variant": fastest, "kernels": bench.top_kernels(runners[fastest], size["profile_steps"])}
    epoch = runners[fastest].epoch_seconds()
    record["epoch"] = {"variant": fastest, "steps": len(runners[fastest].trainer.loaders.train), "seconds": epoch}
    if "graphed" in runners:
        record["graphed_vs_eager"] = seconds["eager"] / seconds["graphed"]
    return record


def summary_markdown(report: dict) -> str:
    lines = [
        f"# gpu-check: {report['device']} ({report['date']}, torch {report['torch']})",
        "",
        f"`pytest tests/test_gpu.py`: {report['gpu_tests'].get('summary', 'not run')}",
        "",
        "| backbone | eager ms | graphed ms | graphed/eager speedup | reference ms | NCHW ms | fp32 ms "
        "| GFLOP/step | TFLOP/s (fastest) | GPU busy (eager / graphed) | epoch s (steps) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ms(rec, name):
        value = rec["ms_per_step"].get(name)
        return f"{value:.2f}" if value is not None else "n/a"

    for rec in report["backbones"]:
        busy = rec.get("gpu_busy_fraction", {})
        busy_text = " / ".join(f"{100 * busy[k]:.0f}%" for k in ("eager", "graphed") if k in busy) or "n/a"
        fastest = rec["epoch"]["variant"]
        speedup = f"{rec['graphed_vs_eager']:.2f}x" if "graphed_vs_eager" in rec else "n/a"
        lines.append(
            f"| {rec['backbone']} | {ms(rec, 'eager')} | {ms(rec, 'graphed')} | {speedup} | {ms(rec, 'reference')} "
            f"| {ms(rec, 'eager_nchw')} | {ms(rec, 'eager_fp32')} | {rec['gflop_per_step']:.1f} "
            f"| {rec['tflops'][fastest]:.3g} | {busy_text} | {rec['epoch']['seconds']:.2f} ({rec['epoch']['steps']}) |"
        )
    for line in report.get("skipped", []):
        lines.append(f"\nNot measured (time budget): {line}")
    for rec in report["backbones"]:
        for name, why in rec["unavailable"].items():
            lines.append(f"\n{rec['backbone']} {name}: not measured: {why}")
        lines += ["", f"Top kernels, {rec['backbone']} ({rec['top_kernels']['variant']} step):", ""]
        lines += [
            f"{i + 1}. {k['ms_per_step']:.3f} ms/step, {k['calls_per_step']:.0f} calls: `{k['name']}`"
            for i, k in enumerate(rec["top_kernels"]["kernels"])
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "gpu", help="folder for the JSON and summary")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on any device (a few seconds)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--backbones", nargs="+", help="default: the size's")
    parser.add_argument("--skip-tests", action="store_true", help="leave out pytest tests/test_gpu.py")
    parser.add_argument(
        "--budget-s", type=float, default=500, help="start no backbone that would likely end past this many seconds"
    )
    args = parser.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    return args, device


def main(argv=None) -> dict:
    args, device = parse_args(argv)
    size = dict(SIZES["tiny" if args.tiny else "full"])
    size["backbones"] = args.backbones or size["backbones"]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = {
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "size": size,
        "flags": {
            "cudnn_benchmark": device.type == "cuda",
            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        },
        "gpu_tests": {"summary": "skipped (--skip-tests)"} if args.skip_tests else run_gpu_tests(args.out),
        "backbones": [],
    }
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as train.py
    images, labels = bench.synthetic_cifar(size["train_size"], bench.NUM_CLASSES)
    last_s = 0.0
    for backbone in size["backbones"]:
        elapsed = time.perf_counter() - started
        if elapsed + last_s > args.budget_s:  # the next backbone would likely overrun: leave it out, say so
            report["skipped"] = report.get("skipped", []) + [f"{backbone}: {elapsed:.0f} s used of {args.budget_s} s"]
            continue
        begun = time.perf_counter()
        report["backbones"].append(check_backbone(backbone, size, device, images, labels))
        last_s = report["backbones"][-1]["seconds"] = time.perf_counter() - begun
        print(json.dumps(report["backbones"][-1]), flush=True)
    report["total_s"] = time.perf_counter() - started
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (args.out / "gpu_check.md").write_text(summary_markdown(report))
    print(summary_markdown(report))
    return report


if __name__ == "__main__":
    main()
