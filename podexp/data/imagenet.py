"""ImageNet-N: the first N ILSVRC-2012 classes (sorted wnids) or a user's class list, at 224 px.

Layout: ``ROOT/train/<wnid>/*.JPEG`` and ``ROOT/val/<wnid>/*.JPEG`` (arrange the flat val folder
with ``scripts/prepare_imagenet_val.py``). The val set is the test split. Augmentation (docs/method.md
§5): RandomResizedCrop(224) + horizontal flip for training, Resize(256) + CenterCrop(224) for
testing; ImageNet mean/std, applied on the device.
"""

from __future__ import annotations

from pathlib import Path

from podexp.data.folders import class_folders, is_image, scan_split
from podexp.data.holdout import holdout_mask
from podexp.data.loaders import check_batch_fits
from podexp.data.registry import DatasetFields
from podexp.data.streaming import FolderStreamLoader
from podexp.errors import DataError, shell_path
from podexp.fields import NumClasses, ValFraction
from podexp.registry import NonNegativeInt, PositiveInt

HOW_TO = (
    "Extract ILSVRC2012_img_train.tar (and its per-class tars) into ROOT/train/<wnid>/ and "
    "ILSVRC2012_img_val.tar into ROOT/val/, run `python scripts/prepare_imagenet_val.py ROOT/val "
    "--ground-truth ILSVRC2012_validation_ground_truth.txt --synsets meta.mat`, and point "
    "dataset.root= at ROOT; see docs/datasets.md."
)


def select_classes(train_dir: Path, num_classes: int, class_list: str | None) -> list[str]:
    """The first ``num_classes`` wnids in sorted order, or the (sorted) wnids of ``class_list``."""
    available = class_folders(train_dir)
    if class_list:
        path = Path(class_list).expanduser()
        if not path.is_file():
            raise DataError(f"dataset.class_list={class_list}: no such file. Give a text file with one wnid per line.")
        chosen = sorted({line.split()[0] for line in path.read_text().splitlines() if line.strip()})
        missing = sorted(set(chosen) - set(available))
        if missing:
            raise DataError(
                f"{len(missing)} class(es) of {path} have no folder in {train_dir}: {missing[:5]}. {HOW_TO}"
            )
        if len(chosen) != num_classes:
            raise DataError(
                f"{path} lists {len(chosen)} distinct classes but dataset.num_classes={num_classes}. Make them agree."
            )
        return chosen
    if len(available) < num_classes:
        raise DataError(
            f"{train_dir} holds {len(available)} class folders; ImageNet-{num_classes} needs "
            f"at least {num_classes}. {HOW_TO}"
        )
    return available[:num_classes]


def _check_layout(root: Path) -> None:
    train_dir, val_dir = root / "train", root / "val"
    if not train_dir.is_dir() or not val_dir.is_dir():
        raise DataError(f"ImageNet not found: {shell_path(root.resolve())} must hold train/ and val/. {HOW_TO}")
    if any(is_image(p.name) for p in val_dir.iterdir() if p.is_file()):
        raise DataError(f"{val_dir} still holds images directly instead of val/<wnid>/ class folders. {HOW_TO}")


def imagenet_loaders(
    *,
    seed: int,
    device,
    rank: int,
    world_size: int,
    channels_last: bool,
    root: str,
    num_classes: NumClasses,
    class_list: str | None,
    val_per_class: PositiveInt | None,
    image_size: PositiveInt,
    resize_size: PositiveInt,
    batch_size: PositiveInt,
    test_batch_size: PositiveInt,
    mean: list,
    std: list,
    augment: dict,
    num_workers: NonNegativeInt,
    prefetch_factor: PositiveInt,
    val_fraction: ValFraction = DatasetFields.val_fraction,
    split_seed: int = DatasetFields.split_seed,
):
    """(train loader, test loader, class names, validation loader or None) of ImageNet-``num_classes`` (a
    streamed dataset).

    ``class_list``: a file of wnids instead of the first ``num_classes``; ``val_per_class``: the exact
    count of val images per class to verify (None: at least one). The ILSVRC val set is the test split;
    ``val_fraction`` > 0 holds out that share of each class's train images (sorted file names, drawn by
    ``split_seed``: ``podexp.data.holdout``) as the validation split, read with the test transform.
    """
    from torchvision import transforms as T

    root = Path(root).expanduser()
    _check_layout(root)
    classes = select_classes(root / "train", num_classes, class_list)
    train_paths, train_labels = scan_split(root / "train", classes, None, dataset="ImageNet train", how_to_fix=HOW_TO)
    test_paths, test_labels = scan_split(
        root / "val", classes, val_per_class, dataset="ImageNet val", how_to_fix=HOW_TO
    )
    held_out = holdout_mask(train_labels, val_fraction, split_seed)
    val_paths, val_labels = [p for p, h in zip(train_paths, held_out) if h], train_labels[held_out]
    train_paths, train_labels = [p for p, h in zip(train_paths, held_out) if not h], train_labels[~held_out]
    check_batch_fits(batch_size, len(train_paths), world_size)
    flip = [T.RandomHorizontalFlip()] if augment["hflip"] else []
    train_tf = T.Compose([T.RandomResizedCrop(image_size), *flip, T.PILToTensor()])
    test_tf = T.Compose([T.Resize(resize_size), T.CenterCrop(image_size), T.PILToTensor()])
    common = dict(
        mean=list(mean),
        std=list(std),
        seed=seed,
        device=device,
        rank=rank,
        world_size=world_size,
        channels_last=channels_last,
        num_workers=num_workers,
        prefetch_factor=prefetch_factor,
    )
    # dataset.batch_size is the global batch: each of the world_size ranks loads its share
    train = FolderStreamLoader(
        train_paths, train_labels.tolist(), batch_size // world_size, train=True, transform=train_tf, **common
    )
    test = FolderStreamLoader(
        test_paths, test_labels.tolist(), test_batch_size, train=False, transform=test_tf, **common
    )
    val = None
    if val_paths:
        val = FolderStreamLoader(
            val_paths, val_labels.tolist(), test_batch_size, train=False, transform=test_tf, **common
        )
    return train, test, classes, val
