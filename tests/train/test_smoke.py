import json

import pytest
from helpers import FAST, train_in_process


def test_two_epoch_run_writes_metrics_result_and_checkpoint(tmp_path):
    result = train_in_process(tmp_path, *FAST, "loss=pod", "loss.v_norm_source=latent", "trainer.checkpoint=true")
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "train_latent_norm", "v", "epoch_time"):
        assert key in rows[0], key
    assert rows[0]["v"] == pytest.approx(0.05)  # v0 in epoch 0
    assert rows[1]["v"] == pytest.approx(0.01 * 1 * rows[0]["train_latent_norm"], rel=1e-4)
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0].startswith("epoch")
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["final_test_acc"] == rows[-1]["test_acc"] == result["final_test_acc"]
    assert saved["best_test_acc"] == max(r["test_acc"] for r in rows)
    assert saved["config"]["loss"]["name"] == "pod" and saved["seed"] == 0
    assert {"git_commit", "total_time_s"} <= set(saved)
    assert (tmp_path / "last.pt").exists() and (tmp_path / "config.yaml").exists()


def test_synthetic_data_is_learnt(tmp_path):
    result = train_in_process(tmp_path, *FAST, "loss=softmax", "trainer.epochs=4")
    assert result["final_test_acc"] > 50.0  # 10 classes: chance is 10%
