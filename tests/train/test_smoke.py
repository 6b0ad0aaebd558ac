from helpers import FAST, train_in_process


def test_two_epoch_run_writes_metrics_and_result(tmp_path):
    result = train_in_process(tmp_path, *FAST, "loss=pod")
    assert result["epochs"] == 2
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    assert (tmp_path / "result.json").exists() and (tmp_path / "config.yaml").exists()
