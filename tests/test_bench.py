"""``scripts/bench.py`` (``make bench``) runs end to end at a tiny size and writes every figure it promises."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from helpers import needs_cpp_compiler

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--device", "cpu", "--backbones", "small_cnn", "--batch", "4", "--steps", "2", "--rounds", "1",
        "--warmup", "1", "--train-size", "32"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_bench_reports_speed_ratios_loss_costs_and_step_profile(bench, tmp_path):
    path = tmp_path / "bench.json"
    report = bench.main([*TINY, "--losses", "softmax", "pod", "cot", "--json", str(path)])
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    (record,) = report["backbones"]
    assert record["backbone"] == "small_cnn" and record["batch"] == 4
    assert set(record["ms_per_step"]) == {"podexp", "reference"}
    assert all(_positive(v) for v in record["ms_per_step"].values())
    assert record["speedup_vs_reference"] == pytest.approx(
        record["ms_per_step"]["reference"] / record["ms_per_step"]["podexp"])
    assert set(record["loss_step_vs_softmax"]) == {"softmax", "pod", "cot"}
    assert record["loss_step_vs_softmax"]["softmax"] == 1.0
    assert record["pod_step_vs_softmax"] == record["loss_step_vs_softmax"]["pod"]
    assert record["loss_step_vs_softmax"]["cot"] > 1.2          # two forward/backward passes per batch
    for side in ("podexp", "reference"):
        assert record["step_profile"][side]["ops_per_step"] >= 20   # conv/bn/relu forward and backward at least


@needs_cpp_compiler
def test_bench_times_a_compile_mode_and_the_step_breakdown(bench):
    report = bench.main([*TINY, "--losses", "softmax", "--compile", "small_cnn", "--compile-modes", "default"])
    assert _positive(report["backbones"][0]["ms_per_step"]["podexp_compile_default"])
    parts = bench.main([*TINY, "--breakdown"])["small_cnn"]
    assert set(parts) == {"loader", "forward_backward", "forward_backward_sgd", "train_step"}
    assert all(_positive(v) for v in parts.values())
