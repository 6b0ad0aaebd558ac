"""Tiny ImageNet and FaceScrub: prepare scripts (idempotent), readers, errors, one training epoch."""

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from fake_images import facescrub_source, snapshot, tiny_imagenet_tree, write_image
from helpers import FAST, ROOT, train_in_process
from PIL import Image

from podexp.data import folders
from podexp.data.folder_datasets import load_facescrub, load_tiny_imagenet
from podexp.data.prepare.facescrub import prepare_facescrub
from podexp.data.prepare.tiny_imagenet import arrange_val
from podexp.errors import DataError

WNIDS = ["n09999999", "n01443537", "n04067472"]  # created out of sorted order on purpose
TINY = dict(num_classes=3, train_per_class=4, val_per_class=2, image_size=16)


@pytest.fixture
def tiny_root(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    labels = tiny_imagenet_tree(root, WNIDS, train_per_class=4, val_per_class=2)
    return root, labels


@pytest.mark.slow
def test_prepare_script_arranges_val_into_class_folders_once(tiny_root):
    root, labels = tiny_root
    script = [sys.executable, str(ROOT / "scripts" / "prepare_tiny_imagenet.py"), str(root)]
    first = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "moved 6 val images" in first.stdout
    assert not (root / "val" / "images").exists()
    for name, wnid in labels.items():
        assert (root / "val" / wnid / "images" / name).is_file()
    before = snapshot(root)
    assert arrange_val(root) == 0  # second run: nothing to do, nothing touched
    assert snapshot(root) == before


@pytest.mark.slow
def test_prepare_script_on_a_wrong_folder_is_a_clear_error(tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "prepare_tiny_imagenet.py"), str(tmp_path / "nowhere")]
    proc = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "tiny-imagenet-200.zip" in proc.stderr


def test_reader_arranges_val_decodes_sorted_classes_and_caches(tiny_root, monkeypatch):
    root, labels = tiny_root
    splits = load_tiny_imagenet(str(root), **TINY)
    assert splits.class_names == sorted(WNIDS)
    assert (root / "val" / WNIDS[0] / "images").is_dir()  # arranged on first use
    assert tuple(splits.train_images.shape) == (12, 3, 16, 16) and len(splits.test_labels) == 6
    # train images are read class by class in sorted wnid order, files sorted by name
    first = root / "train" / "n01443537" / "images" / "n01443537_0.JPEG"
    expected = np.asarray(Image.open(first).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(splits.train_images[0].numpy(), expected)
    assert splits.train_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    val_labels = sorted(sorted(WNIDS).index(w) for w in labels.values())
    assert sorted(splits.test_labels.tolist()) == val_labels
    caches = list(root.glob(".podexp_decoded_*.npz"))
    assert len(caches) == 1
    # a second read comes from the cache: decoding would fail now
    monkeypatch.setattr(folders, "decode_images", lambda *a, **k: pytest.fail("decoded again"))
    again = load_tiny_imagenet(str(root), **TINY)
    assert np.array_equal(again.train_images.numpy(), splits.train_images.numpy())


def test_decode_cache_key_follows_the_file_list(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        write_image(paths[-1], 8, seed=i, fmt="PNG")
    key = folders.file_list_key(tmp_path, paths, 8, 3)
    assert folders.file_list_key(tmp_path, paths[:2], 8, 3) != key
    assert folders.file_list_key(tmp_path, paths, 16, 3) != key
    write_image(paths[0], 9, seed=5, fmt="PNG")  # replaced by a different file
    assert folders.file_list_key(tmp_path, paths, 8, 3) != key


def test_truncated_tiny_imagenet_and_wrong_layout_are_clear_errors(tiny_root):
    root, _ = tiny_root
    (root / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_3.JPEG").unlink()
    with pytest.raises(DataError, match=r"exactly 4 image.*holds 3.*tiny-imagenet-200.zip"):
        load_tiny_imagenet(str(root), **TINY)
    with pytest.raises(DataError, match="holds 3 class folders, expected 200"):
        load_tiny_imagenet(str(root), image_size=16)
    with pytest.raises(DataError, match="must hold train/ and val/"):
        load_tiny_imagenet(str(root / "nowhere"), **TINY)


def test_flat_class_folders_are_a_layout_error(tmp_path):
    root = tmp_path / "tiny"
    tiny_imagenet_tree(root, WNIDS, train_per_class=4, val_per_class=2)
    for wnid in WNIDS:  # images moved out of <wnid>/images/
        for image in (root / "train" / wnid / "images").iterdir():
            image.rename(root / "train" / wnid / image.name)
    with pytest.raises(DataError, match="holds 0"):
        load_tiny_imagenet(str(root), **TINY)


def test_corrupt_image_is_reported_with_its_path(tiny_root):
    root, _ = tiny_root
    bad = root / "train" / WNIDS[2] / "images" / f"{WNIDS[2]}_1.JPEG"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="cannot be decoded") as err:
        load_tiny_imagenet(str(root), **TINY)
    assert str(bad) in str(err.value)


def test_training_on_tiny_imagenet_learns_its_classes(tiny_root, tmp_path):
    root, _ = tiny_root
    result = train_in_process(
        tmp_path / "run",
        *FAST,
        "dataset=tiny_imagenet",
        f"dataset.root={root}",
        "dataset.num_classes=3",
        "dataset.train_per_class=4",
        "dataset.val_per_class=2",
        "dataset.image_size=16",
        "dataset.batch_size=4",
        "dataset.latent_dim=8",
        "backbone.width=8",
        "optim.lr=0.02",
        "trainer.epochs=10",
    )
    assert result["status"] == "completed" and result["epochs"] == 10
    # Each class of the fake tree has its own dominant colour channel (fake_images.write_image), so the
    # 6 val images are separable; chance is 2/6. The run reached 6/6 for seeds 0-7 when written; the
    # floor allows one miss, which still needs train and val labels read in the same class order.
    assert result["final_test_acc"] >= 100.0 * 5 / 6 - 1e-6


# -- FaceScrub --------------------------------------------------------------------------------------

# "dan" has 6 files but two are byte-identical, so 5 usable: the 3 identities with most usable images
# are eve (8), then amy and bob (6 each, tie broken by name); cat (4) and dan (5) are left out.
COUNTS = {"amy": 6, "bob": 6, "cat": 4, "dan": 6, "eve": 8}


@pytest.fixture
def face_src(tmp_path):
    src = tmp_path / "src"
    facescrub_source(src, COUNTS)
    (src / "dan" / "005.jpg").write_bytes((src / "dan" / "004.jpg").read_bytes())
    whole = (src / "eve" / "000.jpg").read_bytes()
    (src / "eve" / "broken.jpg").write_bytes(whole[: len(whole) // 2])  # valid header, truncated data
    (src / "eve" / "notes.txt").write_text("not an image")
    return src


@pytest.mark.slow
def test_facescrub_rule_split_manifest_and_idempotence(face_src, tmp_path):
    dst = tmp_path / "dst"
    script = [
        sys.executable,
        str(ROOT / "scripts" / "prepare_facescrub.py"),
        str(face_src),
        str(dst),
        "--num-identities",
        "3",
        "--test-fraction",
        "0.25",
        "--size",
        "16",
    ]
    first = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (dst / "train").iterdir()) == ["amy", "bob", "eve"]
    manifest = json.loads((dst / "manifest.json").read_text())
    assert manifest["skipped_unreadable"] == ["eve/broken.jpg"]
    for identity in ("amy", "bob", "eve"):
        files = sorted((face_src / identity).glob("*.jpg"))
        files = [f for f in files if f.name != "broken.jpg"]
        by_hash = sorted(files, key=lambda f: (hashlib.sha256(f.read_bytes()).hexdigest(), f.name))
        n_test = math.floor(0.25 * len(files) + 0.5)  # eve 8 -> 2, amy/bob 6 -> 2
        test_sources = {e["source"] for e in manifest["images"] if e["identity"] == identity and e["split"] == "test"}
        assert test_sources == {f"{identity}/{f.name}" for f in by_hash[:n_test]}
        assert len(list((dst / "train" / identity).iterdir())) == len(files) - n_test
    for entry in manifest["images"]:
        out = dst / entry["output"]
        assert hashlib.sha256(out.read_bytes()).hexdigest() == entry["output_sha256"]
        assert Image.open(out).size == (16, 16)
    before = snapshot(dst)
    summary = prepare_facescrub(face_src, dst, num_identities=3, test_fraction=0.25, size=16)
    assert summary["written"] == 0 and summary["removed"] == 0 and summary["test"] == 6
    assert snapshot(dst) == before


def test_facescrub_rerun_repairs_a_damaged_output(face_src, tmp_path):
    dst = tmp_path / "dst"
    prepare_facescrub(face_src, dst, num_identities=3, test_fraction=0.25, size=16)
    victim = next((dst / "test" / "amy").iterdir())
    victim.write_bytes(b"damaged")
    assert prepare_facescrub(face_src, dst, num_identities=3, test_fraction=0.25, size=16)["written"] == 1
    assert Image.open(victim).size == (16, 16)


def test_facescrub_reader_errors_and_one_epoch(face_src, tmp_path):
    dst = tmp_path / "dst"
    prepare_facescrub(face_src, dst, num_identities=3, test_fraction=0.25, size=16)
    splits = load_facescrub(str(dst), num_classes=3, image_size=16)
    assert splits.class_names == ["amy", "bob", "eve"]
    assert len(splits.train_labels) == 14 and len(splits.test_labels) == 6
    result = train_in_process(
        tmp_path / "run",
        *FAST,
        "dataset=facescrub",
        f"dataset.root={dst}",
        "dataset.num_classes=3",
        "dataset.image_size=16",
        "dataset.batch_size=4",
        "dataset.latent_dim=8",
        "trainer.epochs=1",
    )
    assert result["status"] == "completed"
    for image in (dst / "test" / "bob").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"at least one image.*test/bob holds 0.*prepare_facescrub"):
        load_facescrub(str(dst), num_classes=3, image_size=16)
    with pytest.raises(DataError, match="must hold train/<identity>/"):
        load_facescrub(str(face_src), num_classes=3, image_size=16)
