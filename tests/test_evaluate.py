"""``python -m podexp.evaluate RUN_DIR``: a trained run's accuracy, confusion matrix and latent features."""

import csv
import json
import shutil
import sys

import numpy as np
import pytest
import torch
from helpers import FAST, train_in_process

from podexp.evaluate import main
from podexp.io import read_jsonl

TRAIN_SIZE, TEST_SIZE = 128, 64
TINY = (*FAST, "loss=pod", "trainer.epochs=2", f"dataset.train_size={TRAIN_SIZE}", f"dataset.test_size={TEST_SIZE}")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, train_in_process(out, *TINY)  # debug=fast: no last.pt, so model.pt alone is read


def metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def test_evaluate_reproduces_the_runs_test_accuracy_and_writes_its_files(run, tmp_path, capsys):
    folder, result = run
    assert main([str(folder), "--save-features", "--out", str(tmp_path)]) == 0
    assert "accuracy" in capsys.readouterr().out
    summary = metrics(tmp_path)
    assert summary["n"] == TEST_SIZE and summary["split"] == "test"
    assert summary["accuracy"] == pytest.approx(result["final_test_acc"], abs=1e-9)
    last_row = read_jsonl(folder / "metrics.jsonl")[-1]
    assert summary["latent_norm_mean"] == pytest.approx(last_row["test_latent_norm"], rel=1e-5)
    rows = list(csv.reader((tmp_path / "confusion.csv").open()))
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert matrix.shape == (10, 10) and matrix.sum() == TEST_SIZE
    assert 100.0 * np.trace(matrix) / TEST_SIZE == pytest.approx(summary["accuracy"])
    assert [c["n"] for c in summary["per_class"]] == matrix.sum(1).tolist()
    features = np.load(tmp_path / "features.npz")
    assert features["z"].shape == (TEST_SIZE, 16)
    assert np.array_equal(np.bincount(features["labels"], minlength=10), matrix.sum(1))
    assert np.array_equal(np.bincount(features["predictions"], minlength=10), matrix.sum(0))
    assert (tmp_path / "confusion.png").stat().st_size > 0


def test_the_train_split_is_read_whole_and_results_go_into_the_run_folder(run):
    folder, _ = run
    assert main([str(folder), "split=train"]) == 0
    assert metrics(folder / "eval" / "synthetic-train")["n"] == TRAIN_SIZE


def test_the_validation_split_reproduces_the_runs_best_val_accuracy(tmp_path):
    """A run trained with a hold-out: split=val evaluates exactly those images (its last epoch's val_acc)."""
    result = train_in_process(tmp_path / "run", *TINY, "+dataset.val_fraction=0.25")
    assert main([str(tmp_path / "run"), "split=val", "--out", str(tmp_path / "eval")]) == 0
    summary = metrics(tmp_path / "eval")
    assert summary["split"] == "val" and 0.2 * TRAIN_SIZE <= summary["n"] <= 0.3 * TRAIN_SIZE  # ~ a quarter per class
    assert summary["accuracy"] == pytest.approx(result["final_val_acc"], abs=1e-9)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "_orig_mod.module."])
def test_a_checkpoint_of_a_wrapped_network_from_last_pt_loads(run, tmp_path, prefix):
    """last.pt of a DDP / torch.compile run elsewhere: prefixed keys, no model.pt."""
    folder, result = run
    copy = tmp_path / "run"
    copy.mkdir()
    shutil.copy(folder / "config.yaml", copy)
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=False)
    state["model"] = {prefix + key: value for key, value in state["model"].items()}
    torch.save(state, copy / "last.pt")
    assert main([str(copy)]) == 0
    assert metrics(copy / "eval" / "synthetic-test")["accuracy"] == pytest.approx(result["final_test_acc"])


def test_without_matplotlib_the_matrix_is_a_csv_and_the_output_says_so(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main([str(run[0]), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "confusion.csv").exists() and not (tmp_path / "confusion.png").exists()
    assert "matplotlib is not installed" in capsys.readouterr().out


def corrupt(run, tmp_path):
    shutil.copy(run[0] / "config.yaml", tmp_path)
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04 cut short")
    return [str(tmp_path)]


BAD = {  # name: (arguments, fragment of the one-paragraph message)
    "no run folder": (lambda run, tmp: [str(tmp / "nowhere")], "is not a run folder: it has no config.yaml"),
    "no checkpoint": (
        lambda run, tmp: [shutil.copy(run[0] / "config.yaml", tmp) and str(tmp)],
        "holds no checkpoint (model.pt or last.pt)",
    ),
    "corrupt checkpoint": (corrupt, "Cannot read the checkpoint"),
    "unknown split": (lambda run, tmp: [str(run[0]), "split=dev"], "split=dev: use test, val or train"),
    "no validation split": (lambda run, tmp: [str(run[0]), "split=val"], "was trained without a validation split"),
    "unknown dataset": (lambda run, tmp: [str(run[0]), "dataset=nope"], "dataset=nope: no such option"),
    "other image shape": (lambda run, tmp: [str(run[0]), "dataset=digits"], "do not fit the network"),
    "misspelt key": (lambda run, tmp: [str(run[0]), "dataset.bach_size=8"], "Did you mean dataset.batch_size?"),
    "not key=value": (lambda run, tmp: [str(run[0]), "train"], "'train': overrides are key=value"),
    "no CUDA": (lambda run, tmp: [str(run[0]), "--device", "cuda"], "no CUDA device is visible here"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_paragraph_and_exit_code_2(run, tmp_path, capsys, case):
    arguments, fragment = BAD[case]
    if case == "no CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert main(arguments(run, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


def test_a_read_only_run_folder_asks_for_out(run, monkeypatch, capsys):
    import podexp.evaluate

    def refuse(obj, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(podexp.evaluate, "atomic_write_json", refuse)  # as a folder copied read-only would
    assert main([str(run[0])]) == 2
    err = capsys.readouterr().err
    assert "metrics.json (Permission denied). Pass --out DIR" in err and "Traceback" not in err
