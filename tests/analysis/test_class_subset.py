"""dataset.classes (Fig. 6: MNIST's first five classes): subset and relabel."""

import pytest
import torch
from helpers import compose

from podexp.data import build_loaders, select_classes
from podexp.data.sources import TensorSplits
from podexp.errors import ConfigError


def _splits():
    labels = torch.tensor([0, 1, 2, 3, 2, 1])
    images = labels.view(-1, 1, 1, 1).to(torch.uint8).expand(-1, 1, 2, 2).clone()
    return TensorSplits(images, labels, images[:3], labels[:3], ["a", "b", "c", "d"])


def test_select_classes_keeps_and_relabels_in_the_given_order():
    out = select_classes(_splits(), [2, 0])
    assert out.class_names == ["c", "a"]
    assert out.train_labels.tolist() == [1, 0, 0]  # 0 -> 1, 2 -> 0, 2 -> 0
    assert out.train_images[:, 0, 0, 0].tolist() == [0, 2, 2]  # images follow their labels
    assert out.test_labels.tolist() == [1, 0]


@pytest.mark.parametrize("classes", [[], [0, 0], [4]])
def test_bad_class_lists_are_config_errors(classes):
    with pytest.raises(ConfigError, match="dataset.classes"):
        select_classes(_splits(), classes)


def test_digits_first_five_classes_through_build_loaders():
    cfg = compose("dataset=digits", "+dataset.classes=[0,1,2,3,4]", "dataset.num_classes=5").dataset
    loaders = build_loaders(cfg, seed=0, device="cpu")
    assert loaders.num_classes == 5 and loaders.class_names == ["0", "1", "2", "3", "4"]
    assert set(loaders.test.labels.tolist()) == {0, 1, 2, 3, 4}
    assert len(loaders.test.labels) == 180  # 36 test digits per class (20 % of ~180)
