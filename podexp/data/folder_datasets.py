"""Tiny ImageNet and FaceScrub: 64x64 class-folder datasets decoded once into uint8 ``TensorSplits``.

The decoded arrays are cached beside the data (``ROOT/.podexp_decoded_<key>.npz``, key = digest of
the file list and sizes), so later runs skip the JPEG/PNG decoding; ``dataset.cache=false`` turns it off.
"""

from __future__ import annotations

from pathlib import Path

from podexp.data.folders import class_folders, decode_cached, scan_split
from podexp.data.prepare.tiny_imagenet import arrange_val, val_needs_arranging
from podexp.data.sources import TensorSplits, _as_splits
from podexp.errors import DataError, shell_path
from podexp.fields import Channels, NumClasses
from podexp.registry import PositiveInt

TINY_HOW_TO = (
    "Download http://cs231n.stanford.edu/tiny-imagenet-200.zip, unzip it and point "
    "dataset.root= at the tiny-imagenet-200 folder (its val/ is arranged into class folders "
    "on first use, or run `python scripts/prepare_tiny_imagenet.py ROOT`); see docs/datasets.md."
)
FACESCRUB_HOW_TO = (
    "Build the tree with `python scripts/prepare_facescrub.py SRC DST` and point "
    "dataset.root= at DST; see docs/datasets.md."
)


def _decoded_splits(
    root: Path, train: tuple, test: tuple, classes: list[str], image_size: int, channels: int, dataset: str, cache: bool
) -> TensorSplits:
    arrays = decode_cached(
        root, {"train": train[0], "test": test[0]}, image_size, channels, dataset=dataset, cache=cache
    )
    return _as_splits(arrays["train"], train[1], arrays["test"], test[1], classes)


def load_tiny_imagenet(
    root: str,
    num_classes: NumClasses = 200,
    train_per_class: PositiveInt | None = 500,
    val_per_class: PositiveInt | None = 50,
    image_size: PositiveInt = 64,
    channels: Channels = 3,
    cache: bool = True,
) -> TensorSplits:
    """Tiny ImageNet from the official archive layout; the official val set is the test split.

    ``train_per_class``/``val_per_class``: the exact counts to verify (null: only non-empty).
    """
    root = Path(root).expanduser()
    train_dir, val_dir = root / "train", root / "val"
    if not train_dir.is_dir() or not val_dir.is_dir():
        raise DataError(
            f"Tiny ImageNet not found: {shell_path(root.resolve())} must hold train/ and val/. {TINY_HOW_TO}"
        )
    if val_needs_arranging(root):
        arrange_val(root)
    classes = class_folders(train_dir)
    if len(classes) != num_classes:
        raise DataError(
            f"Tiny ImageNet: {train_dir} holds {len(classes)} class folders, expected "
            f"{num_classes} (dataset.num_classes). {TINY_HOW_TO}"
        )
    val_classes = class_folders(val_dir)
    if val_classes != classes:
        missing = sorted(set(classes) - set(val_classes))
        raise DataError(
            f"Tiny ImageNet: the class folders of {val_dir} differ from those of {train_dir} "
            f"(missing in val: {missing[:5]}{'...' if len(missing) > 5 else ''}). {TINY_HOW_TO}"
        )
    train = scan_split(
        train_dir,
        classes,
        train_per_class,
        dataset="Tiny ImageNet train",
        how_to_fix=TINY_HOW_TO,
        images_subdir="images",
    )
    test = scan_split(
        val_dir, classes, val_per_class, dataset="Tiny ImageNet val", how_to_fix=TINY_HOW_TO, images_subdir="images"
    )
    return _decoded_splits(root, train, test, classes, image_size, channels, "Tiny ImageNet", cache)


def load_facescrub(
    root: str, num_classes: NumClasses = 100, image_size: PositiveInt = 64, channels: Channels = 3, cache: bool = True
) -> TensorSplits:
    """FaceScrub-100 from the ImageFolder tree written by ``scripts/prepare_facescrub.py``."""
    root = Path(root).expanduser()
    train_dir, test_dir = root / "train", root / "test"
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise DataError(
            f"FaceScrub not found: {shell_path(root.resolve())} must hold train/<identity>/ and "
            f"test/<identity>/. {FACESCRUB_HOW_TO}"
        )
    classes = class_folders(train_dir)
    if len(classes) != num_classes or class_folders(test_dir) != classes:
        raise DataError(
            f"FaceScrub: {train_dir} and {test_dir} must hold the same {num_classes} identity "
            f"folders (dataset.num_classes); found {len(classes)} and "
            f"{len(class_folders(test_dir))}. {FACESCRUB_HOW_TO}"
        )
    train = scan_split(train_dir, classes, None, dataset="FaceScrub train", how_to_fix=FACESCRUB_HOW_TO)
    test = scan_split(test_dir, classes, None, dataset="FaceScrub test", how_to_fix=FACESCRUB_HOW_TO)
    return _decoded_splits(root, train, test, classes, image_size, channels, "FaceScrub", cache)
