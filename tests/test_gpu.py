"""CUDA-only checks: the device-resident loader, bf16 steps without host syncs, torch.compile, a CUDA run.

Skipped where no GPU is visible (CI). Run on a GPU machine with ``pytest -q tests/test_gpu.py``.
"""

import itertools
import math

import pytest
import torch
from helpers import FAST, build_trainer, compose, train_in_process

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = ("trainer.device=cuda",)


def _loader(seed=3, **overrides):
    from podexp.data.loaders import TensorLoader

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 3, 12, 12), dtype=torch.uint8, generator=gen)
    labels = torch.arange(300) % 7
    options = dict(train=True, crop_padding=2, hflip=True, seed=seed, device="cuda", channels_last=True)
    options.update(overrides)
    return TensorLoader(images, labels, 64, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3], **options), images, labels


def _epoch(loader, epoch, start_step=0):
    loader.set_epoch(epoch, start_step)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_cuda_loader_batches_are_augmented_copies_of_the_source_images():
    loader, images, labels = _loader()
    mean = torch.tensor([0.4, 0.5, 0.6])[:, None, None]
    std = torch.tensor([0.2, 0.25, 0.3])[:, None, None]
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    crops = torch.stack([padded[:, :, dy : dy + 12, dx : dx + 12] for dy in range(5) for dx in range(5)], 1)
    candidates = torch.cat([crops, crops.flip(4)], 1)  # (300, 50, C, H, W): every crop, flipped or not
    seen = []
    for x, y in _epoch(loader, 0):
        assert x.is_cuda and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
        raw = (x.cpu() * std + mean) * 255.0  # undo the normalisation by hand
        assert torch.allclose(raw, raw.round(), atol=1e-3)
        for sample, label in zip(raw.round().to(torch.uint8), y.cpu()):
            explained = (candidates == sample).flatten(2).all(2).any(1).nonzero().flatten().tolist()
            assert explained, "a batch image is not a crop/flip of any training image"
            assert all(labels[i] == label for i in explained)
            seen.append(explained[0])
    assert len(set(seen)) == len(seen) == 4 * 64  # drop_last: 4 full batches, no repeats


def test_cuda_loader_is_deterministic_and_resumes_mid_epoch():
    first = _epoch(_loader()[0], 1)
    again = _epoch(_loader()[0], 1)
    resumed = _epoch(_loader()[0], 1, start_step=2)
    other_epoch = _epoch(_loader()[0], 2)
    for (a, ya), (b, yb) in zip(first, again):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    for (a, ya), (b, yb) in zip(first[2:], resumed):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    assert len(resumed) == len(first) - 2
    assert not torch.equal(first[0][1], other_epoch[0][1])


def _trainer(*overrides):
    torch.backends.cudnn.benchmark = True
    return build_trainer(compose(*FAST, *CUDA, *overrides), torch.device("cuda"))


@pytest.mark.parametrize("loss", ["softmax", "pod", "nac", "cosine"])
def test_bf16_steps_are_finite_and_never_synchronise_with_the_host(loss):
    trainer = _trainer(f"loss={loss}", "backbone=resnet50", "trainer.cuda_graph=false")  # the eager step
    assert trainer.use_amp
    batches = iter(trainer.loaders.train)
    trainer.step(*next(batches))  # warm-up: cudnn autotuning may sync
    torch.cuda.set_sync_debug_mode("error")  # any host sync in the step now raises
    try:
        for _ in range(3):
            trainer.step(*next(batches))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    stats = trainer.stats
    assert stats.count == 4 * trainer.loaders.train.batch_size
    assert math.isfinite(stats.loss_sum) and math.isfinite(stats.norm_sum) and 0 <= stats.correct <= stats.count
    for p in itertools.chain(trainer.model.parameters(), trainer.loss.parameters()):
        assert torch.isfinite(p).all()


@pytest.mark.parametrize("mode", ["true", "reduce-overhead"])
def test_compiled_model_trains_and_checkpoints_plain_keys(tmp_path, mode):
    result = train_in_process(
        tmp_path, *FAST, *CUDA, f"trainer.compile={mode}", "trainer.epochs=1", "trainer.checkpoint=true", "loss=pod"
    )
    assert result["status"] == "completed" and math.isfinite(result["final_test_acc"])
    state = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    assert not any(k.startswith(("_orig_mod", "module")) for k in state["model"])


def test_short_cuda_training_run_learns(tmp_path):
    result = train_in_process(tmp_path, *FAST, *CUDA, "loss=pod", "trainer.epochs=4")
    assert result["device"].startswith("cuda")
    assert result["final_test_acc"] > 50.0  # 10 classes: chance is 10%


@pytest.mark.parametrize("name", ["softmax", "pod", "arcface"])
def test_checking_z_and_y_on_cuda_needs_no_host_sync(name):
    """loss(z, y) validates its arguments (issue 13, item 7) without a device-to-host read on CUDA."""
    from podexp.losses import build

    loss = build(name, num_classes=10, latent_dim=32).cuda().train()
    z = torch.randn(64, 32, device="cuda", requires_grad=True)
    y = torch.randint(0, 10, (64,), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = loss(z, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(value)


def test_a_label_out_of_range_on_cuda_fails_with_the_sentence():
    """The device-side assertion ends the process (it poisons the CUDA context), so it runs in a child."""
    import subprocess
    import sys

    from helpers import ROOT

    script = (
        "import torch\nfrom podexp.losses import build\n"
        "loss = build('pod', num_classes=5, latent_dim=8).cuda()\n"
        "loss(torch.randn(4, 8, device='cuda'), torch.tensor([0, 1, -1, 2], device='cuda'))\n"
        "torch.cuda.synchronize()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "every label in y must lie in [0, num_classes=5)" in done.stderr or "device-side assert" in done.stderr


def _batches(loader, count):
    """``count`` training batches (copies) over as many epochs as needed."""
    batches = []
    for epoch in itertools.count():
        loader.set_epoch(epoch, 0)
        for x, y in loader:
            batches.append((x.clone(), y.clone()))
            if len(batches) == count:
                return batches


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-3) -> bool:
    return bool((a.float() - b.float()).norm() <= rel * a.float().norm().clamp_min(1e-12))


@pytest.mark.parametrize("loss", ["softmax", "pod", "cot", "lsoftmax"])
def test_graphed_steps_are_sync_free_finite_and_match_the_eager_steps(loss):
    """20 identical batches through the eager and the graphed step (``trainer.cuda_graph=true``): one
    capture, no host sync after it, parameters within 1e-3 relative of the eager ones."""
    from podexp.train.graph import WARMUP_STEPS

    eager = _trainer(f"loss={loss}", "optim.lr=0.02", "trainer.cuda_graph=false")
    graphed = _trainer(f"loss={loss}", "optim.lr=0.02", "trainer.cuda_graph=true")
    assert eager.graph is None and graphed.graph is not None
    batches = _batches(eager.loaders.train, 20)
    for trainer in (eager, graphed):
        trainer.model.train()
        trainer.loss.train()
    for x, y in batches:
        eager.step(x, y)
    for i, (x, y) in enumerate(batches):
        if i == WARMUP_STEPS + 1:  # after the capture
            torch.cuda.set_sync_debug_mode("error")
        try:
            graphed.step(x, y)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert graphed.graph.captures == 1
    assert math.isfinite(graphed.stats.loss_sum) and graphed.stats.count == eager.stats.count
    pairs = zip(
        itertools.chain(eager.model.parameters(), eager.loss.parameters()),
        itertools.chain(graphed.model.parameters(), graphed.loss.parameters()),
    )
    for a, b in pairs:
        assert torch.isfinite(b).all() and _close(a, b)


def test_graph_takes_a_momentum_reset_and_a_loaded_state_without_recapture():
    eager = _trainer("loss=pod", "optim.lr=0.02", "trainer.cuda_graph=false")
    graphed = _trainer("loss=pod", "optim.lr=0.02", "trainer.cuda_graph=true")
    batches = _batches(eager.loaders.train, 16)
    for i, (x, y) in enumerate(batches):
        if i == 8:
            for trainer in (eager, graphed):
                for opt in trainer.optimizers:
                    opt.state.clear()  # what MomentumReset does at a milestone
        if i == 12:
            graphed.load_state_dict(eager.state_dict())  # a resume: new optimiser state tensors
        eager.step(x, y)
        graphed.step(x, y)
    assert graphed.graph.captures == 1
    for a, b in zip(eager.model.parameters(), graphed.model.parameters()):
        assert _close(a, b)
