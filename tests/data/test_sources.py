import numpy as np
import pytest
import torch
from helpers import write_fake_mnist, write_idx

from podexp.data.sources import load_cifar, load_digits, load_mnist_like, load_synthetic, read_idx
from podexp.errors import DataError


def test_digits_split_is_fixed_stratified_and_disjoint():
    a, b = load_digits(), load_digits()
    assert torch.equal(a.test_images, b.test_images) and torch.equal(a.train_labels, b.train_labels)
    assert a.train_images.shape[1:] == (1, 8, 8) and a.train_images.dtype == torch.uint8
    assert len(a.train_labels) + len(a.test_labels) == 1797
    per_class = torch.bincount(a.test_labels, minlength=10)
    assert per_class.min() >= 35 and per_class.max() <= 37  # 20% of ~180 images per class
    assert int(a.train_images.max()) == 255


def test_synthetic_any_size_and_class_count():
    s = load_synthetic(num_classes=7, image_size=12, channels=1, train_size=70, test_size=14)
    assert s.train_images.shape == (70, 1, 12, 12) and s.num_classes == 7
    assert set(s.train_labels.tolist()) == set(range(7))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_reader_matches_what_was_written(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x-idx3-ubyte", array, gz)
    assert np.array_equal(read_idx(path), array)


def test_truncated_idx_file_is_named(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((4, 5, 5), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize("layout", ["plain", "torchvision"])
def test_mnist_like_reads_plain_folder_or_torchvision_layout(tmp_path, layout):
    folder = tmp_path / "FashionMNIST" / "raw" if layout == "torchvision" else tmp_path
    write_fake_mnist(folder, n_train=30, n_test=10, gz=(layout == "torchvision"))
    splits = load_mnist_like("fashion_mnist", str(tmp_path), download=False)
    assert splits.train_images.shape == (30, 1, 28, 28) and len(splits.test_labels) == 10
    assert splits.class_names[0] == "T-shirt/top"


def test_missing_mnist_says_which_files_and_where(tmp_path):
    with pytest.raises(DataError) as err:
        load_mnist_like("mnist", str(tmp_path / "nowhere"), download=False)
    assert "train-images-idx3-ubyte" in str(err.value) and "nowhere" in str(err.value)


def test_missing_cifar_says_where_the_archive_goes(tmp_path):
    with pytest.raises(DataError) as err:
        load_cifar("cifar100", str(tmp_path), download=False)
    message = str(err.value)
    assert "cifar-100-python.tar.gz" in message and str(tmp_path) in message and "dataset.root" in message


def _truncated_gz(path):
    path.write_bytes(path.read_bytes()[:-30])


def _html_saved_as_gz(path):
    path.write_bytes(b"<html><body>503 Service Unavailable</body></html>")


def _short_header(path):
    import gzip

    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0])))  # 3 sizes announced, 2 bytes of the first


DAMAGED_GZ = {
    "truncated gzip": (_truncated_gz, "is not a readable gzip file"),
    "not gzip": (_html_saved_as_gz, "is not a readable gzip file"),
    "short header": (_short_header, "is truncated inside its header (6 bytes, the header alone needs 16)"),
}


@pytest.mark.parametrize("case", DAMAGED_GZ, ids=list(DAMAGED_GZ))
def test_a_damaged_idx_gz_is_named_with_re_download(tmp_path, case):
    damage, fragment = DAMAGED_GZ[case]
    path = write_idx(tmp_path / "my data" / "x-idx3-ubyte", np.arange(4 * 5 * 5, dtype=np.uint8).reshape(4, 5, 5), True)
    damage(path)
    with pytest.raises(DataError) as err:
        read_idx(path)
    message = str(err.value)
    assert message.startswith(f"'{path}' ") and fragment in message and "re-download" in message.lower()
