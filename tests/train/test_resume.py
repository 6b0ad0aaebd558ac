"""Exact resume: an interrupted-and-resumed run equals the uninterrupted one, bit for bit."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from helpers import FAST, TINY_DATA, train_in_process

from podexp.errors import ConfigError
from podexp.io import load_checkpoint, save_checkpoint
from podexp.train import signals
from podexp.train.loggers import LocalMetrics

STEPS_PER_EPOCH = 4  # 128 training images / batch 32
TINY = (
    *FAST,
    "trainer.checkpoint=true",
    "trainer.epochs=4",
    *TINY_DATA,
)


def rows_without_timing(folder):
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in LocalMetrics(folder).rows()]


def preempt_after(monkeypatch, steps: int) -> None:
    """Make the trainer see a preemption request after its ``steps``-th step of this process."""
    calls = {"n": 0}

    def requested():
        calls["n"] += 1
        return calls["n"] == steps

    monkeypatch.setattr(signals, "requested", requested)


def interrupted_then_resumed(folder, monkeypatch, stop_after: int, *overrides):
    preempt_after(monkeypatch, stop_after)
    with pytest.raises(signals.Preempted) as stop:
        train_in_process(folder, *TINY, *overrides)
    assert stop.value.code == signals.EXIT_PREEMPTED
    assert not (folder / "result.json").exists()
    monkeypatch.undo()
    return train_in_process(folder, *TINY, *overrides)


def assert_same_state(a_folder, b_folder):
    a, _ = load_checkpoint(a_folder / "last.pt")
    b, _ = load_checkpoint(b_folder / "last.pt")
    for part in ("model", "loss"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"


LOSSES = ["pod", "center", "cot", "lsoftmax"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``reference(loss)``: the folder of an uninterrupted TINY run (trained once per module)."""
    folders = {}

    def get(loss="pod"):
        if loss not in folders:
            folders[loss] = tmp_path_factory.mktemp(f"ref_{loss}")
            train_in_process(folders[loss], *TINY, f"loss={loss}")
        return folders[loss]

    return get


@pytest.mark.parametrize("loss", LOSSES)
def test_mid_epoch_resume_is_bit_exact(tmp_path, monkeypatch, reference, loss):
    ref = reference(loss)
    # preempted after 6 steps: epoch 2 (1-based), 2 of its 4 steps done
    resumed = interrupted_then_resumed(tmp_path / "cut", monkeypatch, 6, f"loss={loss}")
    assert rows_without_timing(tmp_path / "cut") == rows_without_timing(ref)
    assert [r["epoch"] for r in LocalMetrics(tmp_path / "cut").rows()] == [0, 1, 2, 3]  # no duplicates
    assert resumed["final_test_acc"] == json.loads((ref / "result.json").read_text())["final_test_acc"]
    assert_same_state(ref, tmp_path / "cut")


def test_resume_after_the_last_step_of_an_epoch(tmp_path, monkeypatch, reference):
    """Stopped after epoch 2's last batch, before its epoch-end work (v update, evaluation)."""
    interrupted_then_resumed(tmp_path / "cut", monkeypatch, 2 * STEPS_PER_EPOCH)
    assert rows_without_timing(tmp_path / "cut") == rows_without_timing(reference())
    assert_same_state(reference(), tmp_path / "cut")


def test_checkpoint_holds_the_mid_epoch_state(tmp_path, monkeypatch):
    preempt_after(monkeypatch, 6)
    with pytest.raises(signals.Preempted):
        train_in_process(tmp_path, *TINY)
    state, _ = load_checkpoint(tmp_path / "last.pt")
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 2, 6)
    assert state["partial_stats"][2].item() == 2 * 32  # images counted so far in epoch 2
    assert state["epoch_head"]["epoch"] == 1 and "v" in state["epoch_head"]
    assert {"python", "numpy", "torch", "cuda"} <= set(state["rng"])
    assert len(state["config_hash"]) == 16 and state["config"]["loss"]["name"] == "pod"
    assert "wandb_run_id" in state and len(state["optimizers"]) == len(state["schedulers"]) == 1


def test_finished_run_is_not_retrained(reference):
    folder = reference()
    stamp = (folder / "last.pt").stat().st_mtime_ns
    again = train_in_process(folder, *TINY)
    assert again == json.loads((folder / "result.json").read_text())
    assert (folder / "last.pt").stat().st_mtime_ns == stamp
    assert len(LocalMetrics(folder).rows()) == 4


def test_changed_config_is_refused_with_a_diff(tmp_path, monkeypatch):
    preempt_after(monkeypatch, 3)
    with pytest.raises(signals.Preempted):
        train_in_process(tmp_path, *TINY)
    monkeypatch.undo()
    with pytest.raises(ConfigError) as refused:
        train_in_process(tmp_path, *TINY, "optim.lr=0.05", "loss.lam=0.5")
    message = str(refused.value)
    assert "optim.lr: 0.1 -> 0.05" in message and "loss.lam: 1.0 -> 0.5" in message
    assert "resume_allow_changes=true" in message
    assert "lr: 0.1\n" in (tmp_path / "config.yaml").read_text()  # the refused config left no trace
    result = train_in_process(tmp_path, *TINY, "optim.lr=0.05", "resume_allow_changes=true", "trainer.epochs=2")
    assert result["epochs"] == 2
    assert "lr: 0.05\n" in (tmp_path / "config.yaml").read_text()


def test_resume_from_a_path_and_null_starts_afresh(tmp_path, monkeypatch):
    preempt_after(monkeypatch, 6)
    with pytest.raises(signals.Preempted):
        train_in_process(tmp_path / "a", *TINY)
    monkeypatch.undo()
    state, _ = load_checkpoint(tmp_path / "a" / "last.pt")
    with pytest.raises(signals.Preempted):  # resumed from the path: the 2nd step of this process is step 8
        preempt_after(monkeypatch, 2)
        train_in_process(tmp_path / "b", *TINY, f"resume={tmp_path / 'a' / 'last.pt'}")
    assert load_checkpoint(tmp_path / "b" / "last.pt")[0]["global_step"] == state["global_step"] + 2
    assert LocalMetrics(tmp_path / "b").rows() == LocalMetrics(tmp_path / "a").rows()  # epoch 1, carried over
    monkeypatch.undo()
    fresh = tmp_path / "a"
    train_in_process(fresh, *TINY, "resume=null", "trainer.epochs=1")
    assert load_checkpoint(fresh / "last.pt")[0]["global_step"] == STEPS_PER_EPOCH


def test_truncated_last_checkpoint_falls_back_to_prev(tmp_path, caplog):
    save_checkpoint({"model": {"w": torch.tensor([1.0])}, "epoch": 1}, tmp_path)
    save_checkpoint({"model": {"w": torch.tensor([2.0])}, "epoch": 2}, tmp_path)
    last = tmp_path / "last.pt"
    assert load_checkpoint(last)[0]["epoch"] == 2
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        state, used = load_checkpoint(last)
    assert (state["epoch"], used.name) == (1, "prev.pt")
    assert "unreadable" in caplog.text and "Falling back" in caplog.text
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_resume_auto_uses_prev_when_last_is_truncated(tmp_path, monkeypatch, reference):
    """A crash that tore last.pt costs one epoch of work, not the run."""
    preempt_after(monkeypatch, 3 * STEPS_PER_EPOCH + 1)  # end of epoch 3 -> prev.pt, mid-epoch 4 -> last.pt
    with pytest.raises(signals.Preempted):
        train_in_process(tmp_path / "cut", *TINY)
    monkeypatch.undo()
    last = tmp_path / "cut" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    train_in_process(tmp_path / "cut", *TINY)
    assert rows_without_timing(tmp_path / "cut") == rows_without_timing(reference())
    assert_same_state(reference(), tmp_path / "cut")


def test_torn_metrics_line_is_skipped(tmp_path):
    metrics = LocalMetrics(tmp_path)
    metrics.log({"epoch": 0, "test_acc": 1.0})
    with metrics.jsonl.open("a") as handle:
        handle.write('{"epoch": 1, "test_')  # a crash in the middle of an append
    assert metrics.rows() == [{"epoch": 0, "test_acc": 1.0}]
    metrics.truncate_after(1)
    assert metrics.jsonl.read_text() == '{"epoch": 0, "test_acc": 1.0}\n'


def test_unreadable_checkpoint_given_by_path_is_a_user_error(tmp_path):
    from podexp.errors import PodexpError
    from podexp.train.resume import load_for_resume

    garbage = tmp_path / "model.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(PodexpError, match="No readable checkpoint at .*resume=null"):
        load_for_resume(garbage, {}, allow_changes=False)


def test_allowed_changes_are_applied_to_the_resumed_run(tmp_path, monkeypatch, reference):
    """resume_allow_changes=true once recorded a new lr/momentum/weight decay but restored the old ones
    with the optimiser's state: the run went on bit-identical to the unchanged one."""
    changed = ("optim.lr=0.05", "optim.momentum=0.5", "optim.weight_decay=0.001")
    preempt_after(monkeypatch, 6)  # mid epoch 2, at lr 0.1
    with pytest.raises(signals.Preempted):
        train_in_process(tmp_path, *TINY)
    monkeypatch.undo()
    train_in_process(tmp_path, *TINY, *changed, "resume_allow_changes=true")
    state, _ = load_checkpoint(tmp_path / "last.pt")
    group = state["optimizers"][0]["param_groups"][0]
    assert (group["lr"], group["initial_lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.05, 0.5, 0.001)
    assert state["schedulers"][0]["base_lrs"] == [0.05]
    assert [row["lr"] for row in LocalMetrics(tmp_path).rows()] == [0.1, 0.1, 0.05, 0.05]
    assert "lr: 0.05\n" in (tmp_path / "config.yaml").read_text()
    ref, _ = load_checkpoint(reference() / "last.pt")
    assert not torch.equal(state["model"]["fc1.weight"], ref["model"]["fc1.weight"])  # it trained differently


def test_changes_a_checkpoint_fixes_are_refused_even_with_allow_changes(tmp_path, monkeypatch):
    preempt_after(monkeypatch, 3)
    with pytest.raises(signals.Preempted):
        train_in_process(tmp_path, *TINY)
    monkeypatch.undo()
    config = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ConfigError) as refused:
        train_in_process(
            tmp_path, *TINY, "seed=1", "backbone.width=16", "dataset.latent_dim=8", "optim.lr=0.05",
            "resume_allow_changes=true",
        )  # fmt: skip
    message = str(refused.value)
    assert (
        "even with resume_allow_changes=true: backbone.width: 8 -> 16; dataset.latent_dim: 16 -> 8; seed: 0 -> 1"
        in message
    )
    assert "optim.lr" not in message and "resume=null" in message
    assert (tmp_path / "config.yaml").read_text() == config


def test_a_finished_folder_answers_only_for_its_own_config(tmp_path, reference):
    """resume=auto on a folder with result.json once returned the old result for any seed, lr or epochs."""
    folder = tmp_path / "done"
    shutil.copytree(reference(), folder)
    before = (folder / "result.json").read_text()
    for change, shown in (("seed=1", "seed: 0 -> 1"), ("optim.lr=0.05", "optim.lr: 0.1 -> 0.05")):
        with pytest.raises(ConfigError, match="already holds a finished run") as refused:
            train_in_process(folder, *TINY, change)
        assert shown in str(refused.value) and "resume=null" in str(refused.value)
    with pytest.raises(ConfigError, match="trainer.epochs: 4 -> 3"):
        train_in_process(folder, *TINY, "trainer.epochs=3")
    assert (folder / "result.json").read_text() == before
    more = train_in_process(folder, *TINY, "trainer.epochs=6")  # continues from last.pt
    assert more["epochs"] == 6 and load_checkpoint(folder / "last.pt")[0]["epoch"] == 6
    rows = rows_without_timing(folder)
    assert [r["epoch"] for r in rows] == list(range(6)) and rows[:4] == rows_without_timing(reference())


def test_a_finished_run_without_a_checkpoint_cannot_be_continued(tmp_path):
    """More epochs for a run trained with trainer.checkpoint=false: refused, not silently retrained from scratch."""
    quick = (*TINY, "trainer.checkpoint=false", "trainer.epochs=1")
    train_in_process(tmp_path, *quick)
    with pytest.raises(ConfigError, match="finished after 1 epochs but no last.pt to continue it from"):
        train_in_process(tmp_path, *quick[:-1], "trainer.epochs=2")
    assert len(LocalMetrics(tmp_path).rows()) == 1
