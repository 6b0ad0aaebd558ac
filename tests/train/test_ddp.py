"""Data parallelism on the CPU (gloo): gradient averaging by hand, and torchrun end to end."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from helpers import FAST, ROOT, train_in_process

WORLD = 2


def _worker(rank, port, out_path):
    """One rank: softmax loss on a linear model, DDP-wrapped by podexp; dumps the averaged gradients."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from podexp.losses import build
    from podexp.train import distributed

    ctx = distributed.from_env()
    device = distributed.init(ctx, torch.device("cpu"))
    torch.manual_seed(0)  # same initial weights on both ranks
    model = torch.nn.Linear(5, 4)
    loss_fn = build("softmax", num_classes=3, latent_dim=4)
    wrapped = distributed.prepare_model(model, loss_fn, ctx, device)
    x, y = _data()
    shard = slice(rank * 6, (rank + 1) * 6)  # each rank sees half of the global batch
    loss_fn(wrapped(x[shard]), y[shard]).backward()
    stats = ctx.all_reduce(torch.tensor([float(rank + 1)], dtype=torch.float64))
    if rank == 1:
        grads = {name: p.grad for name, p in [*model.named_parameters(), *loss_fn.named_parameters()]}
        torch.save({"grads": grads, "summed": stats}, out_path)
    distributed.shutdown()


def _data():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(12, 5, generator=gen), torch.randint(0, 3, (12,), generator=gen)


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_model_and_loss_gradients_are_the_full_batch_gradients_on_every_rank(tmp_path):
    out = tmp_path / "rank1.pt"
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, start_method="spawn")
    saved = torch.load(out)
    # the full batch on one process, in float64, written out by hand: mean cross-entropy of W(Ax+a)+b
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 4).double()
    from podexp.losses import build

    head = build("softmax", num_classes=3, latent_dim=4).double()
    x, y = _data()
    logits = head.fc(model(x.double()))
    loss = (torch.logsumexp(logits, 1) - logits[torch.arange(12), y]).mean()
    loss.backward()
    expected = {
        "weight": model.weight.grad,
        "bias": model.bias.grad,
        "fc.weight": head.fc.weight.grad,
        "fc.bias": head.fc.bias.grad,
    }
    assert set(saved["grads"]) == set(expected)
    for name, grad in expected.items():
        torch.testing.assert_close(saved["grads"][name].double(), grad, rtol=1e-5, atol=1e-6)
    assert saved["summed"].item() == 3.0  # 1 + 2 over the two ranks


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path):
    overrides = [*FAST, "loss=pod", "loss.v_norm_source=latent", "trainer.epochs=8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={WORLD}",
            str(ROOT / "train.py"),
            *overrides,
            f"hydra.run.dir={tmp_path}/ddp",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(8))  # one writer: no duplicated rows
    # v is computed from the norms summed over both ranks: it matches the all-reduced train norm
    for before, after in zip(rows, rows[1:]):
        assert after["v"] == pytest.approx(0.01 * (before["epoch"] + 1) * before["train_latent_norm"], rel=1e-5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process
    try:
        single = train_in_process(tmp_path / "single", *overrides)
    finally:
        torch.set_num_threads(threads)
    assert abs(ddp["final_test_acc"] - single["final_test_acc"]) <= 3.0
    assert ddp["final_test_acc"] > 80.0


@pytest.mark.slow
def test_ranks_in_different_hydra_folders_run_and_resume_in_rank0s(tmp_path):
    """Hydra names each rank's folder by its own start time, so the ranks may get different folders (made
    certain here): the run still lives in rank 0's, and every rank sees it finished when re-run."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={WORLD}",
        str(ROOT / "train.py"),
        *FAST,
        "trainer.epochs=1",
        "trainer.checkpoint=true",
        f"hydra.run.dir={tmp_path}/rank" + "${oc.env:RANK}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300) for _ in range(2)]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "rank0" / "result.json").exists() and (tmp_path / "rank0" / "last.pt").exists()
    outputs = ("result.json", "last.pt", "model.pt", "metrics.jsonl")
    assert not any((tmp_path / "rank1" / name).exists() for name in outputs)
    weights = torch.load(tmp_path / "rank0" / "model.pt", map_location="cpu", weights_only=False)["model"]
    assert not any(key.startswith("module.") for key in weights)  # model.pt holds the network DDP wrapped
    second = runs[1].stdout + runs[1].stderr
    assert "already holds this finished run" in second and "epoch 1/1" not in second
