"""train.py as a user runs it: through a subprocess, with Hydra's runtime."""

import json

import pytest
from helpers import run_train_py, write_fake_mnist

from podexp.analysis.sweeps import collect
from podexp.io import read_jsonl

pytestmark = pytest.mark.slow


def test_missing_cifar100_stops_before_training_with_one_paragraph(tmp_path):
    (tmp_path / "data" / "cifar100").mkdir(parents=True)  # the folder exists, the archive does not
    proc = run_train_py(
        "loss=pod",
        "dataset=cifar100",
        "dataset.download=false",
        f"data_root={tmp_path}/data",
        f"hydra.run.dir={tmp_path}/run",
        timeout=120,
    )  # no download: the same offline or not
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "downloading is off" in proc.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "last.pt").exists()
    assert "cifar-100-python.tar.gz" in proc.stderr and f"{tmp_path}/data/cifar100" in proc.stderr
    assert json.loads((tmp_path / "run" / "failed.json").read_text())["status"] == "failed"


def test_fashion_mnist_from_a_folder_of_idx_files(tmp_path):
    write_fake_mnist(tmp_path / "fmnist", n_train=256, n_test=64)
    proc = run_train_py(
        "dataset=fashion_mnist",
        f"dataset.root={tmp_path}/fmnist",
        "backbone=small_cnn",
        "trainer.epochs=1",
        "dataset.batch_size=32",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["epochs"] == 1 and result["config"]["dataset"]["name"] == "fashion_mnist"


def test_multirun_then_aggregate(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train_py("-m", "debug=fast", "loss=softmax,pod", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == [
        "debug=fast,loss=pod,seed=0",
        "debug=fast,loss=pod,seed=1",
        "debug=fast,loss=softmax,seed=0",
        "debug=fast,loss=softmax,seed=1",
    ]
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "podexp.aggregate", str(sweep)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    accs = {job: json.loads((sweep / job / "result.json").read_text())["final_test_acc"] for job in jobs}
    pod_mean = (accs[jobs[0]] + accs[jobs[1]]) / 2
    assert f"| debug=fast,loss=pod | {pod_mean:.2f} ±" in out.stdout
    assert "| 2 | 0 |" in out.stdout
    assert (sweep / "summary.csv").exists() and (sweep / "summary.md").read_text() in out.stdout


def test_sweep_rerun_with_result_neutral_changes_continues_in_its_folders(tmp_path):
    sweep = tmp_path / "sweep"
    sweep_args = ("-m", "debug=fast", "trainer.checkpoint=true", "loss=softmax", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert run_train_py(*sweep_args).returncode == 0
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2 and all(job.startswith("debug=fast,loss=softmax,seed=") for job in jobs)
    done, cut = (sweep / job for job in jobs)
    (cut / "result.json").unlink()  # as if killed after its last checkpoint
    stamp = (done / "last.pt").stat().st_mtime_ns
    again = run_train_py(*sweep_args, "resume_allow_changes=true", "logger=wandb", "logger.mode=disabled")
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == jobs  # no new job folders
    assert (done / "last.pt").stat().st_mtime_ns == stamp  # finished: left alone
    assert "Resuming from" in (cut / "train.log").read_text()
    assert [row["epoch"] for row in read_jsonl(cut / "metrics.jsonl")] == [0, 1]  # not trained again
    assert (cut / "result.json").exists()
    [(row, cell)] = collect(sweep).items()  # logger=wandb: no row of its own
    assert row.lower() == "debug=fast,loss=softmax,trainer.checkpoint=true" and cell.n == 2


def test_wandb_offline_one_run_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train_py(
        "-m",
        "debug=fast",
        "logger=wandb",
        "loss=softmax,pod",
        f"hydra.sweep.dir={sweep}",
        "name=wandbtest",
        env={"WANDB_MODE": "offline"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for job in ("debug=fast,loss=softmax", "debug=fast,loss=pod"):
        runs = list((sweep / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, job
        assert list(runs[0].glob("run-*.wandb")), "the offline run file is missing"
        assert (sweep / job / "result.json").exists()
