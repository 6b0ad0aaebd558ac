"""The sweep summary: one row per configuration, seeds and result-neutral keys folded, failures counted."""

import csv
import io
import json
import statistics

import pytest

from podexp.analysis.runs import find_jobs
from podexp.analysis.sweeps import collect, csv_text, markdown, write_summary
from podexp.errors import DataError


def test_seeds_and_result_neutral_overrides_fold_into_one_row(tmp_path, fake_job):
    sweep = tmp_path / "sweep"
    fake_job(sweep, {"loss": "pod", "seed": 0}, 90.0)
    fake_job(sweep, {"loss": "pod", "seed": 1, "logger": "wandb", "logger.mode": "offline"}, 92.0)
    fake_job(sweep, {"loss": "pod", "seed": 2, "resume_allow_changes": "true", "trainer.compile": "true"}, 97.0)
    fake_job(sweep, {"loss": "softmax", "seed": 0, "optim.lr": 0.05}, 80.0)
    cells = collect(sweep)
    assert list(cells) == ["loss=pod", "loss=softmax,optim.lr=0.05"]
    assert cells["loss=pod"].values == [90.0, 92.0, 97.0]
    assert cells["loss=pod"].std == pytest.approx(statistics.stdev([90.0, 92.0, 97.0]))
    assert "| loss=pod | 93.00 ± 3.61 | 3 | 0 |" in markdown(cells)


def test_failed_unfinished_and_rejected_jobs_count_and_nested_folders_do_not(tmp_path, fake_job):
    sweep = tmp_path / "sweep"
    fake_job(sweep, {"loss": "pod", "seed": 0}, 90.0)
    unfinished = fake_job(sweep, {"loss": "pod", "seed": 1}, None)
    rejected = fake_job(sweep, {"loss": "pod", "seed": 2}, None)
    (rejected / "config.yaml").unlink()  # refused before config.yaml was written
    (rejected / "failed.json").write_text(json.dumps({"status": "failed", "error": "bad"}))
    killed = sweep / "loss=pod,seed=3"  # Hydra launched it, nothing else was written
    (killed / ".hydra").mkdir(parents=True)
    (killed / ".hydra" / "config.yaml").write_text("seed: 3\n")
    (killed / ".hydra" / "overrides.yaml").write_text("- loss=pod\n- seed=3\n")
    wandb_files = sweep / "loss=pod,seed=0" / "wandb" / "offline-run-1" / "files"
    wandb_files.mkdir(parents=True)
    (wandb_files / "config.yaml").write_text("{}\n")  # W&B's copy: not a job of its own
    assert [job.path for job in find_jobs([sweep])] == sorted([sweep / "loss=pod,seed=0", unfinished, rejected, killed])
    cell = collect(sweep)["loss=pod"]
    assert cell.n == 1 and sorted(cell.failed) == sorted([unfinished.name, rejected.name, killed.name])


def test_written_files_and_errors(tmp_path, fake_job):
    sweep = tmp_path / "sweep"
    fake_job(sweep, {"loss": "pod", "seed": 0}, 91.0)
    fake_job(sweep, {"loss": "pod", "seed": 1}, None)
    table = write_summary(sweep)
    assert (sweep / "summary.md").read_text() == table
    [row] = list(csv.DictReader(io.StringIO((sweep / "summary.csv").read_text())))
    assert row == {"configuration": "loss=pod", "mean": "91.0000", "std": "0.0000", "n": "1", "failed": "1"}
    assert csv_text(collect(sweep)) == (sweep / "summary.csv").read_text()
    with pytest.raises(DataError, match="not a folder"):
        write_summary(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no runs"):
        write_summary(tmp_path / "empty")


def test_the_summary_tabulates_another_metric_and_names_jobs_that_lack_it(tmp_path, fake_job):
    sweep = tmp_path / "sweep"
    for seed, (val, test) in enumerate([(95.0, 93.0), (97.0, 94.0)]):
        job = fake_job(sweep, {"loss": "pod", "seed": seed}, 90.0)
        (job / "result.json").write_text(
            json.dumps({"final_test_acc": 90.0, "best_val_acc": val, "test_acc_at_best_val": test})
        )
    assert "| loss=pod | 93.50 ± 0.71 | 2 | 0 |" in write_summary(sweep, "test_acc_at_best_val")
    assert "test acc at best val (%)" in (sweep / "summary.md").read_text()
    assert collect(sweep, "best_val_acc")["loss=pod"].values == [95.0, 97.0]
    fake_job(sweep, {"loss": "pod", "seed": 2}, 91.0)  # trained without a validation split
    with pytest.raises(
        DataError, match=r"has no best_val_acc \(trained without a validation split.*--metric final_test_acc"
    ):
        collect(sweep, "best_val_acc")


def test_aggregate_metric_option(tmp_path, fake_job, capsys):
    from podexp.aggregate import main

    job = fake_job(tmp_path, {"loss": "pod", "seed": 0}, 90.0)
    (job / "result.json").write_text(json.dumps({"final_test_acc": 90.0, "best_val_acc": 96.0}))
    assert main([str(tmp_path), "--metric", "best_val_acc"]) == 0
    assert "| loss=pod | 96.00 ± 0.00 | 1 | 0 |" in capsys.readouterr().out
    assert main([str(tmp_path), "--metric", "test_acc_at_best_val"]) == 2
    assert "has no test_acc_at_best_val" in capsys.readouterr().err
