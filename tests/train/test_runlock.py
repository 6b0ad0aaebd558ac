"""One run per folder: a second run into a folder in use is refused; a dead run's lock is taken over."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import FAST, ROOT, compose, run_train_py, train_in_process

from podexp.train.loggers import LocalMetrics
from podexp.train.run import main
from podexp.train.runlock import LOCK_NAME, RunFolderBusy, RunLock

TINY = (
    *FAST,
    "trainer.epochs=1",
    "dataset.train_size=64",
    "dataset.test_size=32",
    "dataset.image_size=8",
    "dataset.batch_size=32",
    "backbone.width=8",
)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_in_a_folder_in_use_is_refused_and_leaves_it_alone(tmp_path, monkeypatch):
    """The first run (here: this process) holds run.lock; the second stops, exit code 2, and writes
    nothing into the other run's folder (no failed.json, no rows)."""
    with RunLock(tmp_path):
        with pytest.raises(RunFolderBusy) as busy:
            train_in_process(tmp_path, *TINY)
        message = str(busy.value)
        assert f"PID {os.getpid()} on host {socket.gethostname()}" in message
        assert f"delete '{tmp_path / LOCK_NAME}'" in message
        monkeypatch.chdir(tmp_path)  # outside Hydra, main() uses the working folder
        with pytest.raises(SystemExit) as stopped:
            main(compose(*TINY))
        assert stopped.value.code == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()  # released by its holder
    train_in_process(tmp_path, *TINY)
    assert not (tmp_path / LOCK_NAME).exists()  # a run releases its lock at the end


def test_the_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, caplog):
    lock = {"pid": dead_pid(), "host": socket.gethostname(), "started": "yesterday", "nonce": "x"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(lock))
    with caplog.at_level(logging.WARNING):
        result = train_in_process(tmp_path, *TINY)
    assert result["status"] == "completed" and "Taking over the stale lock" in caplog.text
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_never_taken_over_by_guess(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": "node-elsewhere", "nonce": "x"}))
    with pytest.raises(RunFolderBusy, match="on host node-elsewhere"):
        train_in_process(tmp_path, *TINY)
    assert (tmp_path / LOCK_NAME).exists()


def test_a_requeued_slurm_job_takes_over_its_own_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "node-before", "slurm_job_id": "4242"}))
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


@pytest.mark.slow
def test_two_train_py_processes_in_one_folder(tmp_path):
    """Two real runs into one hydra.run.dir: the second is refused while the first trains; the first
    (stopped by SIGTERM, as on preemption) has written every epoch row once and released the lock."""
    args = (*TINY, "trainer.epochs=10000", "trainer.checkpoint=true", f"hydra.run.dir={tmp_path}")
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (tmp_path / "metrics.jsonl").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        second = run_train_py(*args, timeout=120)
    finally:
        first.send_signal(signal.SIGTERM)
        _, first_err = first.communicate(timeout=120)
    assert second.returncode == 2 and "is in use by another podexp run" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 75, first_err[-2000:]
    epochs = [r["epoch"] for r in LocalMetrics(tmp_path).rows()]
    assert epochs == list(range(len(epochs))) and epochs
    assert not (tmp_path / LOCK_NAME).exists()
