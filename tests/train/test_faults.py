"""Faults that used to end in a traceback or a wrong exit code (issue 13): each ends in one paragraph, an
exit code and failed.json; signals exit with their documented codes; files respect the umask."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import FAST, ROOT, TINY_DATA, compose, run_train_py, train_in_process, write_fake_mnist
from omegaconf import OmegaConf

from podexp.errors import ConfigError
from podexp.io import atomic_write_text, load_checkpoint, save_checkpoint
from podexp.train import hydra_callbacks, resume, run, signals
from podexp.train.hydra_callbacks import FailedJobs, WritableOutput
from podexp.validate import validate_config

TINY = (
    *FAST,
    "trainer.checkpoint=true",
    "trainer.epochs=2",
    *TINY_DATA,
)


def run_main(monkeypatch, out_dir: Path, *overrides: str) -> SystemExit:
    """``train.py``'s task body (``run.main``) in this process, with ``out_dir`` as Hydra's run folder."""
    monkeypatch.setattr(run, "_hydra_context", lambda: (out_dir, False, "train"))
    with pytest.raises(SystemExit) as stop:
        run.main(compose(*TINY, *overrides))
    return stop.value


def test_resume_with_a_changed_latent_dim_names_the_changes_that_cannot_resume(tmp_path):
    train_in_process(tmp_path, *TINY, "trainer.epochs=1")
    (tmp_path / "result.json").unlink()  # as if stopped after epoch 1
    config_before = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ConfigError) as err:
        train_in_process(tmp_path, *TINY, "resume_allow_changes=true", "dataset.latent_dim=32")
    message = str(err.value)
    assert "cannot be resumed with these changes, even with resume_allow_changes=true" in message
    assert "dataset.latent_dim: 16 -> 32" in message
    assert (tmp_path / "config.yaml").read_text() == config_before  # refused before anything was written


def test_an_unwritable_run_folder_is_one_paragraph_and_exit_1(tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "my runs" / "run"
    real_mkdir = Path.mkdir

    def denied(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "my runs")):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    stop = run_main(monkeypatch, out_dir)
    err = capsys.readouterr().err
    assert stop.code == 1 and "Traceback" not in err
    assert f"error: Cannot write '{out_dir}': permission denied." in err
    assert "point hydra.run.dir (a sweep: hydra.sweep.dir) at a folder you can write" in err


def test_disk_full_while_saving_keeps_the_last_checkpoint_and_says_how_much_room_it_needs(
    tmp_path, monkeypatch, capsys
):
    real_save, calls = torch.save, {"n": 0}

    def full_on_second_checkpoint(obj, handle, *args, **kwargs):
        checkpoint = isinstance(obj, dict) and "config_hash" in obj  # not a PEDCC cache file
        calls["n"] += checkpoint
        if checkpoint and calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_on_second_checkpoint)
    stop = run_main(monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert stop.code == 1 and "Traceback" not in err
    assert f"error: Cannot write {tmp_path / 'last.pt'}: no space left on the device." in err
    assert "A checkpoint of this run needs about " in err and " MiB." in err
    monkeypatch.undo()
    state, used = load_checkpoint(tmp_path / "last.pt")
    assert used.name == "last.pt" and state["epoch"] == 1  # epoch 1's checkpoint is intact
    failure = json.loads((tmp_path / "failed.json").read_text())
    assert failure["status"] == "failed" and "no space left" in failure["error"]
    assert not list(tmp_path.glob(".last.pt.*.tmp"))  # no temporary file left behind


def test_sigint_is_a_preemption_that_exits_130_and_keeps_its_handlers(monkeypatch):
    monkeypatch.setattr(signals, "_requested", None)  # reset after the test
    before = {s: signal.getsignal(s) for s in signals.SIGNALS}
    try:
        with pytest.raises(signals.Preempted) as stop:
            with signals.preemption_handlers():
                os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: the flag is set
                assert signals.requested() and signals.reason() == "Interrupted (Ctrl-C)"
                raise signals.Preempted("stopped")
        assert stop.value.code == signals.EXIT_INTERRUPTED == 130
        # the process is on its way out: a second signal must still find the handler
        assert all(signal.getsignal(s) is signals._handle for s in signals.SIGNALS)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_a_run_without_a_signal_restores_the_handlers():
    before = {s: signal.getsignal(s) for s in signals.SIGNALS}
    with signals.preemption_handlers():
        assert signal.getsignal(signal.SIGTERM) is signals._handle
    assert {s: signal.getsignal(s) for s in signals.SIGNALS} == before


SECOND_SIGNAL_AFTER_THE_WAY_OUT = """
import os, signal, sys, time
from podexp.train import signals
try:
    with signals.preemption_handlers():
        os.kill(os.getpid(), signal.SIGTERM)
        raise signals.Preempted("checkpoint written")
finally:
    time.sleep({delay})
    os.kill(os.getpid(), signal.SIGTERM)  # the second SIGTERM, after the handlers' block was left
    time.sleep(5)
print("not reached")
"""


@pytest.mark.parametrize("delay", [0.02, 0.2])
def test_a_second_sigterm_on_the_way_out_still_exits_75(delay):
    script = SECOND_SIGNAL_AFTER_THE_WAY_OUT.replace("{delay}", str(delay))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == signals.EXIT_PREEMPTED, done.stderr[-2000:]
    assert "Second SIGTERM: exiting now (exit code 75)" in done.stderr and "not reached" not in done.stdout


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_files_podexp_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text("x", tmp_path / "result.json")
        save_checkpoint({"model": {}}, tmp_path)
        save_checkpoint({"model": {}}, tmp_path)
    finally:
        os.umask(old)
    for name in ("result.json", "last.pt", "prev.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_paths_in_the_preemption_message_are_shell_quoted():
    message = resume.preemption_message(Path("/scratch/my runs/pod"), True, 0, 3)
    assert "hydra.run.dir='/scratch/my runs/pod'" in message and "resume='/scratch/my runs/pod/last.pt'" in message


def make_sweep(root: Path, failed: int, completed: int) -> Path:
    for index in range(failed + completed):
        job = root / f"seed={index}"
        (job / ".hydra").mkdir(parents=True)
        name = "failed.json" if index < failed else "result.json"
        (job / name).write_text("{}")
    return root


@pytest.mark.parametrize("allow", [False, True])
def test_a_sweep_with_failed_jobs_exits_1_unless_allowed(tmp_path, capsys, allow):
    sweep = make_sweep(tmp_path / "my sweep", failed=2, completed=3)
    config = OmegaConf.create({"allow_failures": allow, "hydra": {"sweep": {"dir": str(sweep)}}})
    if allow:
        FailedJobs().on_multirun_end(config)
        assert capsys.readouterr().err == ""
        return
    with pytest.raises(SystemExit) as stop:
        FailedJobs().on_multirun_end(config)
    err = capsys.readouterr().err
    assert stop.value.code == 1
    assert f"error: 2 of 5 jobs failed, see '{sweep}/seed=0/failed.json', '{sweep}/seed=1/failed.json'." in err
    assert "allow_failures=true" in err


def test_a_sweep_without_failures_passes(tmp_path):
    sweep = make_sweep(tmp_path, failed=0, completed=2)
    FailedJobs().on_multirun_end(OmegaConf.create({"allow_failures": False, "hydra": {"sweep": {"dir": str(sweep)}}}))


# -- the same through train.py, as a user meets them (slow: a Python process each) --------------------


def write_damaged_mnist(root: Path) -> Path:
    """The four MNIST idx files, gzipped, the training images cut short as an interrupted download."""
    write_fake_mnist(root, gz=True)
    damaged = next(root.rglob("train-images-idx3-ubyte.gz"))
    damaged.write_bytes(damaged.read_bytes()[:-40])
    return damaged


@pytest.mark.slow
def test_train_py_names_a_damaged_download_and_writes_failed_json(tmp_path):
    damaged = write_damaged_mnist(tmp_path / "mnist")
    out = tmp_path / "run"
    done = run_train_py(
        *FAST, "dataset=mnist", f"dataset.root={tmp_path / 'mnist'}", "dataset.download=false", f"hydra.run.dir={out}"
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: {damaged} is not a readable gzip file" in done.stderr and "re-download" in done.stderr
    assert "re-download" in json.loads((out / "failed.json").read_text())["error"]


def start_training(run_dir: Path) -> subprocess.Popen:
    """train.py on 24 steps an epoch; returns once epoch 1's row is written (the signal lands mid-epoch)."""
    overrides = (*TINY, "trainer.epochs=50", "dataset.train_size=384", "dataset.batch_size=16")
    command = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics, deadline = run_dir / "metrics.jsonl", time.time() + 120
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline:
        time.sleep(0.02)
    return child


@pytest.mark.slow
def test_train_py_ctrl_c_saves_like_sigterm_and_exits_130(tmp_path):
    child = start_training(tmp_path)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == signals.EXIT_INTERRUPTED, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "Interrupted (Ctrl-C): A checkpoint after step" in stderr
    state, _ = load_checkpoint(tmp_path / "last.pt")
    assert state["step_in_epoch"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("spacing", [0.02, 0.05, 0.1, 0.2])
def test_train_py_two_sigterms_exit_75_at_any_spacing(tmp_path, spacing):
    child = start_training(tmp_path)
    child.send_signal(signal.SIGTERM)
    time.sleep(spacing)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == signals.EXIT_PREEMPTED, stderr[-2000:]
    load_checkpoint(tmp_path / "last.pt")  # a complete checkpoint either way


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_an_unwritable_output_folder_is_refused_before_hydra_creates_it(tmp_path, monkeypatch, capsys, mode):
    """Hydra's own mkdir of the run folder would fail with a traceback: the callback checks first, and
    leaves nothing behind when the folder can be written."""
    target = tmp_path / "shared space" / "runs" / "x"
    config = OmegaConf.create({"hydra": {mode: {"dir": str(target)}}})
    start = getattr(WritableOutput(), f"on_{'multirun' if mode == 'sweep' else 'run'}_start")
    start(config)  # writable: passes, creates nothing
    assert list(tmp_path.iterdir()) == []

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(hydra_callbacks.tempfile, "mkdtemp", denied)
    with pytest.raises(SystemExit) as stop:
        start(config)
    err = capsys.readouterr().err
    assert stop.value.code == 1
    assert f"error: Cannot write '{target}': permission denied. podexp writes every run into its output folder" in err


def test_a_missing_dataset_folder_with_a_space_is_quoted_in_the_message(tmp_path):
    with pytest.raises(ConfigError, match=f"dataset.root='{tmp_path}/my data': the folder does not exist"):
        validate_config(compose(*FAST, "dataset=tiny_imagenet", f"dataset.root={tmp_path}/my data"))


def test_a_one_job_sweep_in_the_sweep_folder_itself_is_counted(tmp_path, capsys):
    """``-m logger=wandb``: every override is left out of the job folder name, so the job is the sweep folder."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "failed.json").write_text("{}")
    with pytest.raises(SystemExit):
        FailedJobs().on_multirun_end(
            OmegaConf.create({"allow_failures": False, "hydra": {"sweep": {"dir": str(tmp_path)}}})
        )
    assert "1 of 1 jobs failed" in capsys.readouterr().err
