"""hparams_search=pod_optuna: a 2-trial Optuna search on the digits, tuned on the validation split."""

from __future__ import annotations

import json

import pytest
import yaml

from podexp.keys import MAX_FOLDER_NAME
from podexp.reproduce import run_in_process

pytest.importorskip(
    "hydra_plugins.hydra_optuna_sweeper", reason="the podexp[sweep] extra (hydra-optuna-sweeper) is not installed"
)


def test_two_trial_optuna_search_maximises_best_val_acc(tmp_path):
    args = ["hparams_search=pod_optuna", "experiment=demo", "trainer.epochs=2", "hydra.sweeper.n_trials=2"]
    assert run_in_process([*args, f"hydra.sweep.dir={tmp_path}"]) == 0
    trials = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    results = [json.loads((t / "result.json").read_text()) for t in trials]
    assert len(trials) == 2 and all(len(t.name) <= MAX_FOLDER_NAME for t in trials)  # 4 long floats fit
    assert all(r["config"]["dataset"]["val_fraction"] == 0.1 and "test_acc_at_best_val" in r for r in results)
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(r["best_val_acc"] for r in results)
    assert set(best["best_params"]) == {"loss.alpha", "loss.lam", "optim.lr", "optim.weight_decay"}
