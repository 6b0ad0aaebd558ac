"""dataset.val_fraction: a seeded, class-stratified hold-out taken from the training split only."""

from __future__ import annotations

import numpy as np
import torch
from helpers import compose

from podexp.data import build_loaders
from podexp.data.holdout import holdout_mask


def test_hold_out_is_stratified_by_class_and_fixed_by_split_seed():
    labels = np.repeat([0, 1, 2], [10, 20, 30])
    mask = holdout_mask(labels, 0.2, seed=0)
    assert [int(mask[labels == c].sum()) for c in range(3)] == [2, 4, 6]
    assert np.array_equal(mask, holdout_mask(labels, 0.2, seed=0))
    assert not np.array_equal(mask, holdout_mask(labels, 0.2, seed=1))
    assert not holdout_mask(labels, 0.0, seed=0).any()


def test_every_class_keeps_a_training_image_and_gives_one_to_validation():
    labels = np.array([0, 0, 1, 1, 1, 2])  # class 2 has a single image: it stays in training
    counts = [int(holdout_mask(labels, 0.01, seed=0)[labels == c].sum()) for c in range(3)]
    assert counts == [1, 1, 0]


def _images(loader) -> set[bytes]:
    return {bytes(image.numpy().tobytes()) for image in loader.images.cpu()}


def test_validation_images_come_out_of_the_training_split_never_the_test_split():
    whole = build_loaders(compose("dataset=digits").dataset, seed=0, device=torch.device("cpu"))
    split = build_loaders(
        compose("dataset=digits", "+dataset.val_fraction=0.25").dataset, seed=0, device=torch.device("cpu")
    )
    sizes = split.sizes()
    assert whole.val is None and set(sizes) == {"train", "val", "test"}
    assert sizes["train"] + sizes["val"] == whole.sizes()["train"] and sizes["test"] == whole.sizes()["test"]
    assert abs(sizes["val"] - 0.25 * whole.sizes()["train"]) <= 10  # round() per class, 10 classes
    assert sorted(split.val.labels.tolist()) != [] and set(split.val.labels.tolist()) == set(range(10))
    assert _images(split.train) | _images(split.val) == _images(whole.train)
    assert not _images(split.val) & _images(split.test)
