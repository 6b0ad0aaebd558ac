"""ImageNet-N: val arrangement (idempotent), subset rule, streamed loader (exact resume), errors, one epoch."""

import subprocess
import sys

import pytest
import torch
from fake_images import ilsvrc_tree, snapshot
from helpers import FAST, ROOT, compose, train_in_process

from podexp.data import build_loaders
from podexp.data.prepare.imagenet_val import arrange_imagenet_val
from podexp.errors import DataError

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]
# ILSVRC2012_ID i -> wnid: the devkit's ids are not in sorted wnid order
ID_ORDER = ["n01484850", "n01440764", "n01491361", "n01443537"]
SMALL = (
    "dataset.num_classes=3",
    "dataset.val_per_class=2",
    "dataset.image_size=16",
    "dataset.resize_size=18",
    "dataset.batch_size=4",
    "dataset.test_batch_size=4",
    "dataset.num_workers=0",
    "dataset.latent_dim=8",
)


def _devkit_files(tmp_path, val_wnids):
    ground_truth = tmp_path / "ILSVRC2012_validation_ground_truth.txt"
    ground_truth.write_text("".join(f"{ID_ORDER.index(w) + 1}\n" for w in val_wnids))
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("".join(f"{w} some description\n" for w in ID_ORDER))
    return ground_truth, synsets


@pytest.fixture
def imagenet_root(tmp_path):
    root = tmp_path / "imagenet"
    val_wnids = ilsvrc_tree(root, WNIDS, train_per_class=4, val_per_class=2)
    ground_truth, synsets = _devkit_files(tmp_path, val_wnids)
    return root, val_wnids, ground_truth, synsets


@pytest.mark.slow
def test_prepare_val_moves_each_image_to_its_wnid_once(imagenet_root):
    root, val_wnids, ground_truth, synsets = imagenet_root
    script = [
        sys.executable,
        str(ROOT / "scripts" / "prepare_imagenet_val.py"),
        str(root / "val"),
        "--ground-truth",
        str(ground_truth),
        "--synsets",
        str(synsets),
    ]
    first = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "moved 8 val images" in first.stdout
    for i, wnid in enumerate(val_wnids):
        assert (root / "val" / wnid / f"ILSVRC2012_val_{i + 1:08d}.JPEG").is_file()
    before = snapshot(root)
    assert arrange_imagenet_val(root / "val", ground_truth, synsets) == 0
    assert snapshot(root) == before
    for i in (2, 5):  # as if a run had been interrupted before these two
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        (root / "val" / val_wnids[i] / name).rename(root / "val" / name)
    assert arrange_imagenet_val(root / "val", ground_truth, synsets) == 2
    assert snapshot(root).keys() == before.keys()


def _cfg(root, *extra):
    return compose(*FAST, "dataset=imagenet30", f"dataset.root={root}", *SMALL, *extra).dataset


def test_flat_val_is_a_clear_error(imagenet_root):
    root = imagenet_root[0]
    with pytest.raises(DataError, match="still holds images directly.*prepare_imagenet_val.py"):
        build_loaders(_cfg(root), seed=0, device="cpu")


def test_subset_is_the_first_sorted_wnids_or_a_class_list(imagenet_root, tmp_path):
    root, _, ground_truth, synsets = imagenet_root
    arrange_imagenet_val(root / "val", ground_truth, synsets)
    loaders = build_loaders(_cfg(root), seed=0, device="cpu")
    assert loaders.class_names == sorted(WNIDS)[:3]
    class_list = tmp_path / "classes.txt"
    class_list.write_text("n01491361\nn01440764\nn01484850\n")
    loaders = build_loaders(_cfg(root, f"dataset.class_list={class_list}"), seed=0, device="cpu")
    assert loaders.class_names == ["n01440764", "n01484850", "n01491361"]
    images, labels = next(iter(loaders.test))
    assert images.dtype == torch.float32 and tuple(images.shape) == (4, 3, 16, 16)
    assert labels.tolist() == [0, 0, 1, 1]  # val in class order, 2 per class
    next((root / "val" / "n01440764").iterdir()).unlink()
    with pytest.raises(DataError, match="exactly 2 image"):
        build_loaders(_cfg(root), seed=0, device="cpu")


def test_resumed_epoch_and_worker_processes_give_the_same_batches(imagenet_root):
    root, _, ground_truth, synsets = imagenet_root
    arrange_imagenet_val(root / "val", ground_truth, synsets)
    train = build_loaders(_cfg(root, "dataset.batch_size=3"), seed=3, device="cpu").train
    assert len(train) == 4  # 12 images // 3
    train.set_epoch(1)
    full = list(train)
    train.set_epoch(1, start_step=2)
    resumed = list(train)
    assert len(resumed) == 2
    for (a, ya), (b, yb) in zip(full[2:], resumed):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    train.set_epoch(2)
    second = list(train)
    assert not torch.equal(second[0][0], full[0][0])  # another epoch, another order/augmentation
    workers = build_loaders(_cfg(root, "dataset.batch_size=3", "dataset.num_workers=2"), seed=3, device="cpu").train
    for epoch, expected in ((1, full), (2, second)):  # persistent workers pick up each epoch
        workers.set_epoch(epoch)
        got = list(workers)
        assert len(got) == len(expected)
        for (a, ya), (b, yb) in zip(expected, got):
            assert torch.equal(a, b) and torch.equal(ya, yb)


def test_corrupt_image_in_a_streamed_batch_is_reported_with_its_path(imagenet_root):
    root, _, ground_truth, synsets = imagenet_root
    arrange_imagenet_val(root / "val", ground_truth, synsets)
    bad = root / "train" / "n01443537" / "n01443537_2.JPEG"
    bad.write_bytes(b"garbage")
    train = build_loaders(_cfg(root), seed=0, device="cpu").train
    with pytest.raises(DataError, match="cannot be decoded") as err:
        list(train)
    assert str(bad) in str(err.value)


def test_one_epoch_on_imagenet_subset(imagenet_root, tmp_path):
    root, _, ground_truth, synsets = imagenet_root
    arrange_imagenet_val(root / "val", ground_truth, synsets)
    result = train_in_process(
        tmp_path / "run",
        *FAST,
        "dataset=imagenet100",
        f"dataset.root={root}",
        *SMALL,
        "trainer.epochs=1",
        "optim=sgd_imagenet",
    )
    assert result["status"] == "completed" and result["config"]["optim"]["weight_decay"] == 1e-4


def test_validation_split_is_held_out_of_train_by_the_documented_rule(imagenet_root):
    root, _, ground_truth, synsets = imagenet_root
    arrange_imagenet_val(root / "val", ground_truth, synsets)
    loaders = build_loaders(_cfg(root, "+dataset.val_fraction=0.25"), seed=0, device="cpu")
    assert loaders.sizes() == {"train": 9, "val": 3, "test": 6}  # 4 train images per class: one held out
    val_files = set(loaders.val.loader.dataset.paths)
    assert all(p.parent.parent == root / "train" for p in val_files)
    assert not val_files & set(loaders.train.loader.dataset.paths)
    _, labels = next(iter(loaders.val))
    assert labels.tolist() == [0, 1, 2]
    again = build_loaders(_cfg(root, "+dataset.val_fraction=0.25"), seed=5, device="cpu")
    assert set(again.val.loader.dataset.paths) == val_files  # split_seed, not the run's seed, draws it
