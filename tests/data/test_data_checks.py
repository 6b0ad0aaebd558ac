"""Data that do not add up are refused when read, in one paragraph, before anything indexes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import compose, write_fake_mnist, write_idx

from podexp.data import build_loaders
from podexp.errors import DataError


def loaders(folder, *overrides):
    cfg = compose("dataset=mnist", f"dataset.root={folder}", "dataset.download=false", *overrides)
    return build_loaders(cfg.dataset, seed=0, device=torch.device("cpu"))


@pytest.mark.parametrize("n_labels", [200, 300])
def test_images_and_labels_must_be_as_many(tmp_path, n_labels):
    """256 images with 200 labels once trained silently on 200 (with 300: an IndexError mid-epoch)."""
    write_fake_mnist(tmp_path, n_train=256, n_test=64)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(n_labels, dtype=np.uint8))
    with pytest.raises(DataError) as err:
        loaders(tmp_path)
    message = str(err.value)
    assert f"The train split of dataset 'mnist' (read from {tmp_path}) does not add up" in message
    assert f"it holds 256 images but {n_labels} labels" in message and "re-download" in message


def test_labels_must_lie_in_the_class_range_even_when_classes_are_selected(tmp_path):
    write_fake_mnist(tmp_path, n_train=64, n_test=32)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(32, 12, dtype=np.uint8))
    with pytest.raises(DataError, match=r"test split .* labels run from 12 to 12, outside 0\.\.9 for its 10 classes"):
        loaders(tmp_path, "+dataset.classes=[0,1,2]", "dataset.num_classes=3")


def test_both_splits_must_have_one_image_shape(tmp_path):
    write_fake_mnist(tmp_path, n_train=64, n_test=32)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((32, 20, 20), dtype=np.uint8))
    with pytest.raises(
        DataError, match=r"test split .* shape \(1, 20, 20\) \(C, H, W\) but the train split's are \(1, 28, 28\)"
    ):
        loaders(tmp_path)
