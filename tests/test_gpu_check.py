"""``scripts/gpu_check.py`` (``make gpu-check``) runs end to end at a tiny size on any device and writes what it
promises: per-variant step times, FLOPs, profile, top kernels, a real epoch, JSON and a markdown summary."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import load_script, positive


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


def test_tiny_gpu_check_writes_every_figure(gpu_check, tmp_path):
    report = gpu_check.main(["--tiny", "--skip-tests", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == json.loads(json.dumps(report))
    (record,) = report["backbones"]
    expected = {"eager", "eager_nchw", "eager_fp32", "reference"}
    if torch.cuda.is_available():
        expected.add("graphed")
    else:
        assert "not CUDA" in record["unavailable"]["graphed"]
    assert set(record["ms_per_step"]) == set(record["tflops"]) == expected
    assert all(positive(v) for v in record["ms_per_step"].values())
    assert all(positive(v) for v in record["one_time_s"].values())
    assert positive(record["gflop_per_step"])
    assert record["step_profile"]["eager"]["ops_per_step"] >= 20
    kernels = record["top_kernels"]["kernels"]
    assert len(kernels) == 10 and all(positive(k["ms_per_step"]) for k in kernels)
    assert [k["ms_per_step"] for k in kernels] == sorted((k["ms_per_step"] for k in kernels), reverse=True)
    assert record["epoch"]["steps"] == 4 and positive(record["epoch"]["seconds"])  # 16 images / batch 4
    summary = (tmp_path / "gpu_check.md").read_text()
    assert "| small_cnn |" in summary and "Top kernels, small_cnn" in summary
    assert positive(record["seconds"]) and "skipped" not in report


def test_a_backbone_past_the_time_budget_is_left_out_and_named(gpu_check, tmp_path):
    report = gpu_check.main(["--tiny", "--skip-tests", "--out", str(tmp_path), "--budget-s", "0"])
    assert report["backbones"] == [] and report["skipped"][0].startswith("small_cnn:")
    assert "Not measured (time budget): small_cnn" in (tmp_path / "gpu_check.md").read_text()


def test_summary_shows_the_graphed_speedup_and_busy_fractions(gpu_check):
    record = {
        "backbone": "resnet50",
        "unavailable": {},
        "ms_per_step": {"eager": 30.0, "graphed": 10.0, "reference": 32.0, "eager_nchw": 33.0, "eager_fp32": 31.0},
        "gflop_per_step": 1000.0,
        "tflops": {"graphed": 100.0},
        "gpu_busy_fraction": {"eager": 0.3, "graphed": 0.9},
        "graphed_vs_eager": 3.0,
        "epoch": {"variant": "graphed", "steps": 390, "seconds": 3.9},
        "top_kernels": {"variant": "graphed", "kernels": []},
    }
    report = {"device": "GPU", "date": "d", "torch": "t", "gpu_tests": {"summary": "8 passed"}, "backbones": [record]}
    row = next(line for line in gpu_check.summary_markdown(report).splitlines() if line.startswith("| resnet50"))
    assert row == "| resnet50 | 30.00 | 10.00 | 3.00x | 32.00 | 33.00 | 31.00 | 1000.0 | 100 | 30% / 90% | 3.90 (390) |"


@pytest.mark.slow  # a pytest subprocess
def test_the_gpu_tests_step_records_pytests_summary(gpu_check, tmp_path):
    result = gpu_check.run_gpu_tests(tmp_path)
    assert result["exit_code"] == 0 and ("passed" in result["summary"] or "skipped" in result["summary"])
    assert (tmp_path / "gpu_tests.log").read_text()
