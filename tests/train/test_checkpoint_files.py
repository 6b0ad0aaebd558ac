"""What a finished run keeps (``trainer.keep_checkpoints``) and the weights-only ``model.pt``."""

import re

import pytest
import torch
from helpers import FAST, ROOT, train_in_process

from podexp.io import load_checkpoint
from podexp.keys import is_result_neutral
from podexp.train.resume import config_hash

TINY = (
    *FAST,
    "loss=pod",
    "trainer.checkpoint=true",
    "trainer.epochs=2",
    "dataset.train_size=128",
    "dataset.test_size=64",
    "backbone.width=8",
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, train_in_process(out, *TINY)


def test_a_finished_run_keeps_last_and_model_and_drops_prev(finished):
    out, _ = finished
    assert (out / "last.pt").exists() and (out / "model.pt").exists() and not (out / "prev.pt").exists()
    weights = torch.load(out / "model.pt", map_location="cpu", weights_only=False)
    assert set(weights) == {"config", "num_classes", "model", "loss"}  # no optimiser, schedule or RNG state
    last, _ = load_checkpoint(out / "last.pt")
    for part in ("model", "loss"):
        assert weights[part].keys() == last[part].keys()
        assert all(torch.equal(weights[part][k], last[part][k]) for k in last[part])


def test_the_readmes_two_lines_give_the_runs_predictions(finished):
    from omegaconf import OmegaConf

    from podexp.compose import build_components

    out, result = finished
    section = (ROOT / "README.md").read_text().split("### Evaluate a checkpoint", 1)[1].split("\n### ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(code.replace("outputs/runs/default/<date_time>", str(out)), namespace)
    model, loss = namespace["model"], namespace["loss"]
    config = OmegaConf.create(torch.load(out / "model.pt", map_location="cpu", weights_only=False)["config"])
    loaders, _, _ = build_components(config, torch.device("cpu"))
    with torch.no_grad():
        hits = sum((loss.predict(model(x)).argmax(1) == y).sum().item() for x, y in loaders.test)
    assert 100.0 * hits / 64 == pytest.approx(result["final_test_acc"], abs=1e-9)
    assert not model.training and not loss.training


@pytest.mark.parametrize(
    ("keep", "kept"),
    [("all", {"last.pt", "prev.pt", "model.pt"}), ("model_only", {"model.pt"})],
)
def test_keep_checkpoints_chooses_the_files(tmp_path, keep, kept):
    train_in_process(tmp_path, *TINY, f"trainer.keep_checkpoints={keep}")
    assert {p.name for p in tmp_path.glob("*.pt")} == kept
    assert (tmp_path / "result.json").exists()


def test_model_pt_is_written_without_per_epoch_checkpoints(tmp_path):
    train_in_process(tmp_path, *FAST, "trainer.epochs=1", "dataset.train_size=64", "dataset.test_size=32")
    assert {p.name for p in tmp_path.glob("*.pt")} == {"model.pt"}  # debug=fast: trainer.checkpoint=false


def test_keep_checkpoints_is_result_neutral(finished):
    out, _ = finished
    resolved = load_checkpoint(out / "last.pt")[0]["config"]
    changed = {**resolved, "trainer": {**resolved["trainer"], "keep_checkpoints": "model_only"}}
    assert is_result_neutral("trainer.keep_checkpoints")
    assert config_hash(changed) == config_hash(resolved)  # resuming with another setting is not refused


def test_an_unknown_keep_checkpoints_value_names_the_choices(tmp_path):
    from podexp.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.keep_checkpoints=some: use last_and_model, all or model_only"):
        train_in_process(tmp_path, *FAST, "trainer.keep_checkpoints=some")
