"""Tuning on a validation split: val_* metrics, the best epoch chosen on val, and the number main() returns."""

from __future__ import annotations

import json
import logging
import math

from helpers import compose, train_in_process

from podexp.train.run import optimized_value

DIGITS = ("experiment=demo", "trainer.epochs=3", "+dataset.val_fraction=0.2")


def test_best_epoch_is_chosen_on_val_and_its_test_accuracy_recorded(tmp_path):
    result = train_in_process(tmp_path, *DIGITS)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all({"val_loss", "val_acc", "val_latent_norm", "best_val_acc"} <= set(r) for r in rows)
    best = max(range(len(rows)), key=lambda i: (rows[i]["val_acc"], -i))  # the first epoch of the highest val
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["best_val_acc"] == rows[best]["val_acc"] == result["best_val_acc"]
    assert saved["test_acc_at_best_val"] == rows[best]["test_acc"]
    assert saved["final_val_acc"] == rows[-1]["val_acc"] and "best_test_acc" not in saved


def test_without_a_validation_split_best_is_the_test_maximum_as_before(tmp_path):
    result = train_in_process(tmp_path, "experiment=demo", "trainer.epochs=2")
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert result["best_test_acc"] == max(r["test_acc"] for r in rows)
    assert "val_acc" not in rows[0] and "test_acc_at_best_val" not in result


def test_the_optimized_metric_is_returned_and_a_failed_or_diverged_job_gives_minus_infinity():
    cfg = compose("optimized_metric=test_acc_at_best_val", "+dataset.val_fraction=0.1")
    assert optimized_value(cfg, {"test_acc_at_best_val": 91.5, "final_test_acc": 90.0}) == 91.5
    assert optimized_value(compose(), {"final_test_acc": 90}) == 90.0
    assert optimized_value(cfg, None) == -math.inf  # failed job (failed.json)
    assert optimized_value(cfg, {"test_acc_at_best_val": float("nan")}) == -math.inf


def test_a_run_says_what_it_is_then_each_epoch_its_time_and_eta(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        train_in_process(tmp_path, *DIGITS)
    text = caplog.text
    assert "1,151 train / 287 val / 359 test images, 10 classes, latent d=32" in text
    assert "small_cnn backbone 92,896 parameters" in text
    assert "device cpu x1, fp32, batch 64, 17 steps/epoch, 3 epochs" in text
    assert text.count("ETA 0:") == 3 and "val acc" in text


def test_the_epoch_bar_counts_epochs_on_a_terminal(tmp_path, capsys):
    train_in_process(tmp_path, "experiment=demo", "trainer.epochs=2", "trainer.progress=true")
    assert "epochs: 100%" in capsys.readouterr().err


def test_a_resumed_run_keeps_its_best_val_epoch(tmp_path):
    train_in_process(tmp_path, *DIGITS, "trainer.checkpoint=true", "trainer.epochs=2")
    (tmp_path / "result.json").unlink()  # continued for a third epoch from last.pt
    resumed = train_in_process(tmp_path, *DIGITS, "trainer.checkpoint=true", "resume_allow_changes=true")
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    best = max(range(3), key=lambda i: (rows[i]["val_acc"], -i))
    assert (resumed["best_val_acc"], resumed["test_acc_at_best_val"]) == (rows[best]["val_acc"], rows[best]["test_acc"])
