"""Datasets -> batches. ``build_loaders(cfg.dataset, ...)`` is the only entry point the trainer uses."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

from podexp.data.folder_datasets import load_facescrub, load_tiny_imagenet
from podexp.data.imagenet import build_imagenet_loaders
from podexp.data.loaders import TensorLoader
from podexp.data.sources import (TensorSplits, load_cifar, load_digits, load_mnist_like,
                                 load_synthetic)
from podexp.errors import ConfigError, DataError, unknown_name

READERS: dict[str, Callable[..., TensorSplits]] = {
    "digits": load_digits,
    "synthetic": load_synthetic,
    "mnist": partial(load_mnist_like, "mnist"),
    "fashion_mnist": partial(load_mnist_like, "fashion_mnist"),
    "cifar10": partial(load_cifar, "cifar10"),
    "cifar100": partial(load_cifar, "cifar100"),
    "tiny_imagenet": load_tiny_imagenet,
    "facescrub": load_facescrub,
}
# datasets too large for memory: builder(cfg, seed=, device=, rank=, world_size=, channels_last=)
# -> (train loader, test loader, class names), loaders with TensorLoader's interface
STREAMED = {f"imagenet{n}": build_imagenet_loaders for n in (30, 100, 200, 500, 1000)}


@dataclass
class Loaders:
    train: TensorLoader
    test: TensorLoader
    num_classes: int
    class_names: list[str]


def select_classes(splits: TensorSplits, classes: list[int]) -> TensorSplits:
    """Keep only the classes with these indices (``dataset.classes``), relabelled 0..len-1 in that order."""
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c < splits.num_classes
                                                                    for c in classes):
        raise ConfigError(f"dataset.classes={classes} must list distinct class indices in "
                          f"0..{splits.num_classes - 1}.")
    relabel = torch.full((splits.num_classes,), -1, dtype=torch.int64)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))

    def keep(images, labels):
        mask = relabel[labels] >= 0
        return images[mask], relabel[labels[mask]]
    train_images, train_labels = keep(splits.train_images, splits.train_labels)
    test_images, test_labels = keep(splits.test_images, splits.test_labels)
    return TensorSplits(train_images, train_labels, test_images, test_labels,
                        [splits.class_names[c] for c in classes])


def _check_splits(splits: TensorSplits, cfg) -> None:
    found = splits.num_classes
    if found != cfg.num_classes:
        raise DataError(f"Dataset '{cfg.name}' has {found} classes but dataset.num_classes="
                        f"{cfg.num_classes}. Fix dataset.num_classes or the data folder.")
    shape = tuple(splits.train_images.shape[1:])
    expected = (cfg.channels, cfg.image_size, cfg.image_size)
    if shape != expected:
        raise DataError(f"Dataset '{cfg.name}' holds images of shape {shape} (C, H, W) but the config "
                        f"says {expected}. Fix dataset.channels / dataset.image_size.")
    for labels, split in ((splits.train_labels, "train"), (splits.test_labels, "test")):
        if labels.numel() == 0:
            raise DataError(f"The {split} split of dataset '{cfg.name}' is empty.")
        if labels.min() < 0 or labels.max() >= found:
            raise DataError(f"The {split} split of '{cfg.name}' has labels outside 0..{found - 1}.")


def build_loaders(cfg, *, seed: int, device, rank: int = 0, world_size: int = 1,
                  channels_last: bool = False) -> Loaders:
    """Read ``cfg.name`` and wrap its splits in train/test loaders on ``device``."""
    if cfg.name not in READERS and cfg.name not in STREAMED:
        raise unknown_name("dataset", cfg.name, {**READERS, **STREAMED})
    if cfg.batch_size < 1:
        raise ConfigError(f"dataset.batch_size must be at least 1; got {cfg.batch_size}.")
    if cfg.name in STREAMED:
        train, test, class_names = STREAMED[cfg.name](cfg, seed=seed, device=device, rank=rank,
                                                      world_size=world_size, channels_last=channels_last)
        return Loaders(train, test, len(class_names), class_names)
    options = {k: v for k, v in cfg.items() if k not in ("name", "mean", "std", "augment", "classes")}
    splits = READERS[cfg.name](**options)
    if cfg.get("classes") is not None:
        splits = select_classes(splits, list(cfg.classes))
    _check_splits(splits, cfg)
    if cfg.batch_size % world_size:
        raise ConfigError(f"dataset.batch_size={cfg.batch_size} is the global batch and must divide evenly "
                          f"over the {world_size} processes of this torchrun job. Pick a multiple of {world_size}.")
    if len(splits.train_labels) < cfg.batch_size:
        raise ConfigError(f"dataset.batch_size={cfg.batch_size} is larger than the training split "
                          f"({len(splits.train_labels)} images): no full batch fits. Lower dataset.batch_size.")
    common = dict(mean=list(cfg.mean), std=list(cfg.std), device=device, rank=rank,
                  world_size=world_size, channels_last=channels_last)
    # batch_size is global: under torchrun each of the world_size ranks loads its share of every batch
    train = TensorLoader(splits.train_images, splits.train_labels, cfg.batch_size // world_size, train=True,
                         crop_padding=cfg.augment.crop_padding, hflip=cfg.augment.hflip, seed=seed,
                         **common)
    test = TensorLoader(splits.test_images, splits.test_labels, cfg.get("test_batch_size", 512),
                        train=False, **common)
    return Loaders(train, test, splits.num_classes, splits.class_names)
