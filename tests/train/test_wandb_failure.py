"""W&B failures (real wandb package) never stop training: an offline run, else local logs only."""

from __future__ import annotations

import json
import logging

import pytest
import wandb
from helpers import FAST, compose, train_in_process

TINY = (
    *FAST,
    "logger=wandb",
    "trainer.epochs=1",
    "dataset.train_size=128",
    "dataset.test_size=64",
    "dataset.image_size=8",
    "backbone.width=8",
)


def test_invalid_wandb_mode_falls_back_to_an_offline_run(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="podexp.train.loggers"):
        result = train_in_process(tmp_path, *TINY, "logger.mode=bogus")
    assert result["epochs"] == 1
    assert "W&B could not start (ValidationError" in caplog.text
    assert f"wandb sync {tmp_path}/wandb/offline-run-*" in caplog.text
    assert list((tmp_path / "wandb").glob("offline-run-*"))  # what wandb sync will upload
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "completed"
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1


@pytest.mark.slow
def test_unreachable_wandb_server_does_not_stop_training(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    wandb.teardown()  # the wandb singleton of an earlier test would keep its old settings
    with caplog.at_level(logging.WARNING, logger="podexp.train.loggers"):
        result = train_in_process(tmp_path, *TINY)
    assert result["epochs"] == 1 and (tmp_path / "result.json").exists()
    assert "W&B could not start" in caplog.text and "wandb sync" in caplog.text


def test_wandb_init_is_bounded_by_logger_init_timeout_then_the_run_goes_offline(tmp_path, caplog, monkeypatch):
    """A server that never answers would hold wandb.init for W&B's own 90 s and more: podexp passes
    logger.init_timeout (configs/logger/wandb.yaml, 30 s) and says that the run went offline."""
    calls = []
    real_init = wandb.init

    def silent_server(**kwargs):
        calls.append(kwargs)
        if kwargs.get("mode") != "offline":
            raise wandb.errors.CommError(
                f"Run initialization has timed out after {kwargs['settings'].init_timeout} sec."
            )
        return real_init(**kwargs)

    monkeypatch.setattr(wandb, "init", silent_server)
    with caplog.at_level(logging.WARNING, logger="podexp.train.loggers"):
        train_in_process(tmp_path, *TINY, "logger.init_timeout=7.5")
    assert calls[0]["settings"].init_timeout == 7.5
    assert "timed out after 7.5 sec.; it waits logger.init_timeout=7.5 s for the server" in caplog.text
    assert "The run went offline" in caplog.text
    assert compose("logger=wandb").logger.init_timeout == 30  # the default
