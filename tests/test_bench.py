"""``scripts/bench.py`` (``make bench``) runs end to end at a tiny size and writes every figure it promises."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from helpers import load_script, needs_cpp_compiler, positive

TINY = [
    "--device",
    "cpu",
    "--backbones",
    "small_cnn",
    "--batch",
    "4",
    "--steps",
    "2",
    "--rounds",
    "1",
    "--warmup",
    "1",
    "--train-size",
    "32",
]


@pytest.fixture(scope="module")
def bench():
    return load_script("bench")


def test_bench_reports_speed_ratios_loss_costs_and_step_profile(bench, tmp_path):
    path = tmp_path / "bench.json"
    report = bench.main([*TINY, "--losses", "softmax", "pod", "cot", "--json", str(path)])
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    (record,) = report["backbones"]
    assert record["backbone"] == "small_cnn" and record["batch"] == 4
    sides = {"podexp", "tuned_eager", "reference"}
    assert set(record["ms_per_step"]) == set(record["tflops"]) == set(record["one_time_s"]) == sides
    assert all(positive(v) for v in record["ms_per_step"].values())
    assert all(len(record["epoch_s_rounds"][side]) == 1 for side in sides)  # --rounds 1
    assert positive(record["speedup_vs_reference"]) and positive(record["speedup_vs_tuned_eager"])
    assert record["meets_definition"] is False  # one round of 2 steps: short of >= 5 whole epochs
    reference_flags = record["flags"]["reference"]
    assert reference_flags["host_reads_per_step"] == 2 and "cudnn_allow_tf32" in reference_flags
    assert record["flags"]["podexp"]["cuda_graph"] is torch.cuda.is_available()
    assert positive(record["reference_loader"]["fraction_of_training_epoch"])
    assert set(record["loss_step_vs_softmax"]) == {"softmax", "pod", "cot"} and "loss_build_errors" not in record
    assert all(positive(v) for v in record["loss_ms_per_step"].values())
    for side in sides:
        assert record["step_profile"][side]["ops_per_step"] >= 20  # conv/bn/relu forward and backward at least


@pytest.mark.slow  # inductor builds C++ kernels in compile-worker subprocesses
@needs_cpp_compiler
def test_bench_times_a_compile_mode_and_the_step_breakdown(bench):
    report = bench.main([*TINY, "--losses", "softmax", "--compile", "small_cnn", "--compile-modes", "default"])
    assert positive(report["backbones"][0]["ms_per_step"]["podexp_compile_default"])
    parts = bench.main([*TINY, "--breakdown"])["small_cnn"]
    assert set(parts) == {"loader", "forward_backward", "forward_backward_sgd", "train_step"}
    assert all(positive(v) for v in parts.values())


class FakeClock:
    """Stands in for ``time.perf_counter``: time moves only when a fake runner "runs"."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeRunner:
    """A runner whose step costs exactly ``cost`` seconds, times ``growth`` more after every block run."""

    def __init__(self, clock, cost, growth=1.0):
        self.clock, self.cost, self.growth, self.device = clock, cost, growth, torch.device("cpu")

    def run(self, steps):
        self.clock.now += steps * self.cost
        self.cost *= self.growth


def test_loss_cost_is_the_step_time_relative_to_softmax(bench, monkeypatch):
    """Known step costs 10 / 20 / 12.5 ms: the bench must report 1, 2 and 1.25 and the seconds per step."""
    clock = FakeClock()
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock))
    runners = {name: FakeRunner(clock, cost) for name, cost in [("softmax", 0.010), ("cot", 0.020), ("pod", 0.0125)]}
    ratios, seconds = bench.paired_ratios(runners, "softmax", steps=4, warmup=1, rounds=3)
    assert ratios == {"softmax": 1.0, "cot": pytest.approx(2.0), "pod": pytest.approx(1.25)}
    assert seconds == {"softmax": pytest.approx(0.010), "cot": pytest.approx(0.020), "pod": pytest.approx(0.0125)}


def test_interleaved_takes_the_median_seconds_per_step(bench, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock))
    runner = FakeRunner(clock, 0.004, growth=1.5)  # a machine getting busier: 4, 6, 9, 13.5 ms
    median = bench.interleaved({"only": runner}, steps=5, warmup=2, rounds=3)["only"]
    assert median == pytest.approx(0.009)  # the warm-up block (4 ms) is not timed


def test_speedup_is_the_median_of_per_round_epoch_ratios_and_one_time_costs_are_apart(bench, monkeypatch):
    """Steady epochs of 3 steps at 10 ms (podexp), 30 ms (reference), 20 ms (tuned eager), each first epoch
    1 s slower: speedups 3 and 2, one-time costs 1 s, over 5 rounds."""
    clock = FakeClock()
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock))

    class Warming(FakeRunner):
        def __init__(self, clock, cost):
            super().__init__(clock, cost)
            self.first = True

        def run(self, steps):
            super().run(steps)
            if self.first:
                self.clock.now += 1.0
                self.first = False

    runners = {name: Warming(clock, c) for name, c in [("podexp", 0.010), ("reference", 0.030), ("tuned_eager", 0.020)]}
    result = bench.epoch_comparison(runners, epoch_steps=3, rounds=5)
    assert result["speedup_vs_reference"] == pytest.approx(3.0)
    assert result["speedup_vs_tuned_eager"] == pytest.approx(2.0)
    assert result["epoch_s"]["podexp"] == pytest.approx(0.030)
    assert result["one_time_s"] == pytest.approx({"podexp": 1.0, "reference": 1.0, "tuned_eager": 1.0})
    assert all(len(v) == 5 for v in result["epoch_s_rounds"].values())
