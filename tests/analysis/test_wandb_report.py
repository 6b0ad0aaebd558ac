"""With logger=wandb the finished table and figures go to W&B (offline here) as a table and images."""

import json

import pytest

from podexp.analysis.report import build_item

WANDB_LOGGER = {
    "logger": {
        "name": "wandb",
        "project": "podexp-test",
        "entity": None,
        "group": "table4",
        "tags": ["table4"],
        "mode": "offline",
    }
}


@pytest.mark.slow
def test_table_and_figure_are_logged_offline(tmp_path, fake_job, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    sweep = tmp_path / "sweep"
    fake_job(
        sweep,
        {"loss": "pod", "dataset": "cifar10", "seed": 0},
        94.0,
        config=WANDB_LOGGER,
        metrics=[{"epoch": 0, "test_acc": 94.0, "train_loss": 0.1}],
    )
    reports = tmp_path / "reports"
    assert build_item("table4", [sweep], reports) == 0
    assert build_item("fig4", [sweep], reports) == 0
    # offline runs keep their media beside the run: the table as a table file, the figure as an image
    tables = list((reports / "table4" / "wandb").glob("offline-run-*/files/media/table/table4/table_[0-9]*.table.json"))
    texts = list((reports / "table4" / "wandb").glob("offline-run-*/files/media/table/table4/table_text_*.json"))
    images = list((reports / "fig4" / "wandb").glob("offline-run-*/files/media/images/fig4/*.png"))
    assert len(tables) == 1 and len(texts) == 1 and len(images) == 1
    logged = json.loads(texts[0].read_text())
    assert logged["columns"][:2] == ["loss", "cifar10"]
    assert ["pod", "94.00 ± 0.00 (n=1)", "94.31", "-0.31"] == logged["data"][-1][:4]
    numeric = json.loads(tables[0].read_text())
    assert numeric["columns"] == ["loss", "column", "mean", "std", "n", "failed", "paper", "diff"]
    row = next(r for r in numeric["data"] if r[:2] == ["pod", "cifar10"])
    assert row[2:5] == [94.0, 0.0, 1] and row[6] == 94.31 and row[7] == pytest.approx(-0.31)
