"""Preemption: SIGTERM/SIGUSR1 -> mid-epoch checkpoint and exit code 75; resume=auto continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import FAST, ROOT, train_in_process

from podexp.io import load_checkpoint
from podexp.train import signals

# 24 steps per epoch so that the signal lands inside an epoch
SMALL = (
    *FAST,
    "trainer.checkpoint=true",
    "trainer.epochs=2",
    "dataset.train_size=384",
    "dataset.test_size=64",
    "dataset.image_size=8",
    "dataset.batch_size=16",
    "backbone.width=8",
)


def test_first_signal_only_sets_the_flag_and_the_handlers_stay_until_exit(monkeypatch):
    monkeypatch.setattr(signals, "_requested", None)  # reset after the test
    before = {s: signal.getsignal(s) for s in signals.SIGNALS}
    try:
        with signals.preemption_handlers():
            assert not signals.requested()
            os.kill(os.getpid(), signal.SIGUSR1)
            assert signals.requested() and signals.signal_name() == "SIGUSR1"
        assert signal.getsignal(signal.SIGUSR1) is signals._handle  # a second one still exits 75
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.slow
def test_second_signal_exits_at_once_with_the_preemption_code():
    script = (
        "import os, signal, time\nfrom podexp.train import signals\n"
        "with signals.preemption_handlers():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(5)\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == signals.EXIT_PREEMPTED
    assert "Second SIGTERM: exiting now" in done.stderr and "not reached" not in done.stdout


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_matches_the_uninterrupted_run(tmp_path):
    reference = train_in_process(tmp_path / "ref", *SMALL)
    run_dir = tmp_path / "cut"
    command = [sys.executable, str(ROOT / "train.py"), *SMALL, f"hydra.run.dir={run_dir}"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline:
        time.sleep(0.02)  # wait for epoch 1 to be written, then preempt inside epoch 2
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == signals.EXIT_PREEMPTED, stderr[-2000:]
    assert "SIGTERM received" in stderr and "resume=auto" in stderr and "Traceback" not in stderr
    state, _ = load_checkpoint(run_dir / "last.pt")
    assert state["step_in_epoch"] > 0 and not (run_dir / "result.json").exists()
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads((run_dir / "result.json").read_text())
    assert resumed["final_test_acc"] == reference["final_test_acc"]
    assert resumed["best_test_acc"] == reference["best_test_acc"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]


def test_a_sigterm_during_setup_is_taken_at_the_first_step(tmp_path, monkeypatch):
    """A signal while the data are read or the model is built (minutes for ImageNet) is not the default
    handler's exit 143: the run checkpoints at its first step boundary and exits with 75."""
    from podexp.train import run

    monkeypatch.setattr(signals, "_requested", None)
    before = {s: signal.getsignal(s) for s in signals.SIGNALS}
    real_build_run = run.build_run

    def build_run_then_preempted(*args, **kwargs):
        built = real_build_run(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return built

    monkeypatch.setattr(run, "build_run", build_run_then_preempted)
    try:
        with pytest.raises(signals.Preempted) as stop:
            train_in_process(tmp_path, *SMALL)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    assert stop.value.code == signals.EXIT_PREEMPTED
    state, _ = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 0 and state["step_in_epoch"] == 1
