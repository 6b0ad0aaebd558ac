"""Datasets -> batches. ``build_loaders(cfg.dataset, ...)`` is the only entry point the trainer uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from podexp.data.folder_datasets import load_facescrub, load_tiny_imagenet
from podexp.data.holdout import holdout_mask
from podexp.data.imagenet import imagenet_loaders
from podexp.data.loaders import TensorLoader, check_batch_fits
from podexp.data.registry import DATASETS, dataset_options
from podexp.data.sources import TensorSplits, load_cifar, load_digits, load_mnist_like, load_synthetic
from podexp.errors import ConfigError, DataError

DATASETS.register("digits")(load_digits)
DATASETS.register("synthetic")(load_synthetic)
for _name in ("mnist", "fashion_mnist"):
    DATASETS.register(_name)(partial(load_mnist_like, _name))
for _name in ("cifar10", "cifar100"):
    DATASETS.register(_name)(partial(load_cifar, _name))
DATASETS.register("tiny_imagenet")(load_tiny_imagenet)
DATASETS.register("facescrub")(load_facescrub)
# too large for memory: streamed from the image files by DataLoader workers (TensorLoader's interface)
for _n in (30, 100, 200, 500, 1000):
    DATASETS.register(f"imagenet{_n}", streamed=True)(imagenet_loaders)


@dataclass
class Loaders:
    train: TensorLoader
    test: TensorLoader
    num_classes: int
    class_names: list[str]
    val: TensorLoader | None = None  # the hold-out of dataset.val_fraction (None when it is 0)

    def sizes(self) -> dict[str, int]:
        """Images per split: {"train": n, "val": n (when held out), "test": n}."""
        splits = {"train": self.train, "val": self.val, "test": self.test}
        return {name: loader.num_samples for name, loader in splits.items() if loader is not None}


def select_classes(splits: TensorSplits, classes: list[int]) -> TensorSplits:
    """Keep only the classes with these indices (``dataset.classes``), relabelled 0..len-1 in that order."""
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c < splits.num_classes for c in classes):
        raise ConfigError(f"dataset.classes={classes} must list distinct class indices in 0..{splits.num_classes - 1}.")
    relabel = torch.full((splits.num_classes,), -1, dtype=torch.int64)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))

    def keep(images, labels):
        mask = relabel[labels] >= 0
        return images[mask], relabel[labels[mask]]

    train_images, train_labels = keep(splits.train_images, splits.train_labels)
    test_images, test_labels = keep(splits.test_images, splits.test_labels)
    return TensorSplits(train_images, train_labels, test_images, test_labels, [splits.class_names[c] for c in classes])


def _check_read(splits: TensorSplits, name: str, root) -> None:
    """The data as read must add up before anything indexes them: per split as many labels as images
    (one each), labels in 0..K-1 for the K classes found, and one image shape (C, H, W) for both splits."""
    where = f" (read from {root})" if root else ""
    fix = (
        "The files are probably truncated, mixed from different downloads or not this dataset's; "
        "re-download or re-extract them (docs/datasets.md says where they come from)."
    )
    found = splits.num_classes
    for images, labels, split in (
        (splits.train_images, splits.train_labels, "train"),
        (splits.test_images, splits.test_labels, "test"),
    ):
        problem = None
        if images.ndim != 4:
            problem = f"its images have shape {tuple(images.shape)}, not N x C x H x W"
        elif labels.ndim != 1 or len(labels) != len(images):
            problem = f"it holds {len(images)} images but {labels.numel()} labels (one per image is needed)"
        elif labels.numel() == 0:
            problem = "it is empty"
        elif labels.min() < 0 or labels.max() >= found:
            problem = (
                f"its labels run from {int(labels.min())} to {int(labels.max())}, outside 0..{found - 1} "
                f"for its {found} classes"
            )
        elif tuple(images.shape[1:]) != tuple(splits.train_images.shape[1:]):
            problem = (
                f"its images have shape {tuple(images.shape[1:])} (C, H, W) but the train split's "
                f"are {tuple(splits.train_images.shape[1:])}"
            )
        if problem:
            raise DataError(f"The {split} split of dataset '{name}'{where} does not add up: {problem}. {fix}")


def _first_per_class(images, labels, per_class: int | None):
    if per_class is None:
        return images, labels
    rank = torch.zeros_like(labels)
    for cls in labels.unique():
        where = labels == cls
        rank[where] = torch.arange(int(where.sum()))
    keep = rank < per_class
    return images[keep], labels[keep]


def first_per_class(splits: TensorSplits, train: int | None, test: int | None) -> TensorSplits:
    """Keep the first ``train`` training and ``test`` test images of each class, in file order
    (``dataset.train_per_class`` / ``test_per_class``: a fixed, seed-independent subset for CPU runs;
    None keeps the whole split)."""
    train_images, train_labels = _first_per_class(splits.train_images, splits.train_labels, train)
    test_images, test_labels = _first_per_class(splits.test_images, splits.test_labels, test)
    return TensorSplits(train_images, train_labels, test_images, test_labels, splits.class_names)


def _check_splits(splits: TensorSplits, name: str, ds: dict) -> None:
    """The data (after ``dataset.classes``) match the config: class count and image shape."""
    found = splits.num_classes
    if found != ds["num_classes"]:
        raise DataError(
            f"Dataset '{name}' has {found} classes but dataset.num_classes="
            f"{ds['num_classes']}. Fix dataset.num_classes or the data folder."
        )
    shape = tuple(splits.train_images.shape[1:])
    expected = (ds["channels"], ds["image_size"], ds["image_size"])
    if shape != expected:
        raise DataError(
            f"Dataset '{name}' holds images of shape {shape} (C, H, W) but the config "
            f"says {expected}. Fix dataset.channels / dataset.image_size."
        )


def build_loaders(
    cfg, *, seed: int, device, rank: int = 0, world_size: int = 1, channels_last: bool = False
) -> Loaders:
    """Read ``cfg.name`` and wrap its splits in train/test loaders on ``device``."""
    ds = DATASETS.resolve(cfg.name, dataset_options(cfg))
    if DATASETS.attributes(cfg.name).get("streamed"):
        train, test, class_names, val = DATASETS.build(
            cfg.name, seed=seed, device=device, rank=rank, world_size=world_size, channels_last=channels_last, **ds
        )
        return Loaders(train, test, len(class_names), class_names, val)
    splits = DATASETS.build(cfg.name, **ds)
    _check_read(splits, cfg.name, ds.get("root"))
    if ds["classes"] is not None:
        splits = select_classes(splits, list(ds["classes"]))
    if ds["train_per_class"] is not None or ds["test_per_class"] is not None:
        splits = first_per_class(splits, ds["train_per_class"], ds["test_per_class"])
    _check_splits(splits, cfg.name, ds)
    held_out = torch.from_numpy(holdout_mask(splits.train_labels.numpy(), ds["val_fraction"], ds["split_seed"]))
    train_images, train_labels = splits.train_images[~held_out], splits.train_labels[~held_out]
    check_batch_fits(ds["batch_size"], len(train_labels), world_size)
    common = dict(
        mean=list(ds["mean"]),
        std=list(ds["std"]),
        device=device,
        rank=rank,
        world_size=world_size,
        channels_last=channels_last,
    )
    # batch_size is global: under torchrun each of the world_size ranks loads its share of every batch
    train = TensorLoader(
        train_images,
        train_labels,
        ds["batch_size"] // world_size,
        train=True,
        crop_padding=ds["augment"]["crop_padding"],
        hflip=ds["augment"]["hflip"],
        seed=seed,
        **common,
    )
    test = TensorLoader(splits.test_images, splits.test_labels, ds["test_batch_size"], train=False, **common)
    val = None
    if held_out.any():  # scored like the test split: no augmentation
        val = TensorLoader(
            splits.train_images[held_out], splits.train_labels[held_out], ds["test_batch_size"], train=False, **common
        )
    return Loaders(train, test, splits.num_classes, splits.class_names, val)
