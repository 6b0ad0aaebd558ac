"""``trainer.compile``: a compiled model trains like the eager one and checkpoints plain keys (CPU here;
``tests/test_gpu.py`` covers CUDA)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import FAST, needs_cpp_compiler, train_in_process


def _first_row(out_dir):
    return json.loads((out_dir / "metrics.jsonl").read_text().splitlines()[0])


@pytest.mark.slow  # inductor builds C++ kernels in compile-worker subprocesses
@needs_cpp_compiler
def test_reduce_overhead_mode_trains_like_eager_and_saves_plain_keys(tmp_path):
    settings = (*FAST, "loss=pod", "trainer.epochs=1", "trainer.checkpoint=true")
    train_in_process(tmp_path / "eager", *settings)
    compiled = train_in_process(tmp_path / "compiled", *settings, "trainer.compile=reduce-overhead")
    assert compiled["status"] == "completed"
    eager_row, compiled_row = _first_row(tmp_path / "eager"), _first_row(tmp_path / "compiled")
    # same seed, same batches: only floating-point reassociation by the compiler may differ
    assert compiled_row["train_loss"] == pytest.approx(eager_row["train_loss"], rel=1e-3)
    assert compiled_row["test_loss"] == pytest.approx(eager_row["test_loss"], rel=1e-3)
    state = torch.load(tmp_path / "compiled" / "last.pt", map_location="cpu", weights_only=False)
    assert not any(k.startswith(("_orig_mod", "module")) for k in state["model"])
