"""Datasets that fit in memory as uint8 tensors: digits, synthetic, MNIST-like, CIFAR.

Each reader returns a ``TensorSplits``: uint8 images (N x C x H x W) and int64 labels for the train
and test splits, with class names in sorted order (class k <-> PEDCC row k).
"""

from __future__ import annotations

import gzip
import socket
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

from podexp.errors import DataError, shell_path
from podexp.fields import Channels, NumClasses
from podexp.registry import NonNegativeFloat, PositiveInt, Range


@dataclass
class TensorSplits:
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _as_splits(train_x, train_y, test_x, test_y, class_names) -> TensorSplits:
    def images(x):
        x = torch.as_tensor(np.ascontiguousarray(x))
        if x.ndim == 3:
            x = x.unsqueeze(1)
        elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        return x.to(torch.uint8).contiguous()

    return TensorSplits(
        images(train_x),
        torch.as_tensor(np.asarray(train_y), dtype=torch.int64),
        images(test_x),
        torch.as_tensor(np.asarray(test_y), dtype=torch.int64),
        list(class_names),
    )


# -- embedded and synthetic data ------------------------------------------------------------------


def load_digits(test_fraction: Annotated[float, Range(gt=0, lt=1)] = 0.2, split_seed: int = 0) -> TensorSplits:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), offline.

    The train/test split is fixed: stratified, ``test_fraction`` of each class, chosen by ``split_seed``
    (independent of the run's seed, so every run is scored on the same test images).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(split_seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        test_mask[rng.choice(idx, size=int(round(len(idx) * test_fraction)), replace=False)] = True
    return _as_splits(
        images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask], [str(c) for c in range(10)]
    )


def load_synthetic(
    num_classes: NumClasses = 10,
    image_size: PositiveInt = 32,
    channels: Channels = 3,
    train_size: PositiveInt = 512,
    test_size: PositiveInt = 256,
    noise: NonNegativeFloat = 0.35,
    data_seed: int = 0,
) -> TensorSplits:
    """Learnable random images of any size and class count, for tests and smoke runs.

    Each class has a prototype: a random colour plus a smooth, mirror-symmetric random pattern (so the
    crop and flip augmentations keep it recognisable); samples add Gaussian pixel noise.
    """
    gen = torch.Generator().manual_seed(data_seed)
    colour = torch.rand(num_classes, channels, 1, 1, generator=gen)
    coarse = torch.rand(num_classes, channels, 4, 4, generator=gen)
    pattern = torch.nn.functional.interpolate(
        coarse, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    prototypes = 0.6 * colour + 0.2 * (pattern + pattern.flip(3))

    def split(n):
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=gen)]
        x = prototypes[labels] + noise * torch.randn(n, channels, image_size, image_size, generator=gen)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), labels

    (tx, ty), (vx, vy) = split(train_size), split(test_size)
    return TensorSplits(tx, ty, vx, vy, [f"class_{k:04d}" for k in range(num_classes)])


# -- MNIST-like idx files -------------------------------------------------------------------------

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_CLASSES = {
    "mnist": [str(k) for k in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}


def _read_bytes(path: Path) -> bytes:
    """The content of ``path``, gunzipped for a ``.gz`` name; a damaged archive is a ``DataError``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"{shell_path(path)} is not a readable gzip file ({err.__class__.__name__}: {err}); it "
            f"is truncated or was saved as something else (an HTML error page?). Delete it and "
            f"re-download it."
        ) from None


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (gzipped or not): magic 0x0000 <dtype 0x08> <ndim>, big-endian sizes, data."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{shell_path(path)} is not an idx file (only {len(data)} bytes). Re-download it.")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DataError(f"{shell_path(path)} is not an unsigned-byte idx file (bad magic number). Re-download it.")
    if len(data) < 4 + 4 * ndim:
        raise DataError(
            f"{shell_path(path)} is truncated inside its header ({len(data)} bytes, the header "
            f"alone needs {4 + 4 * ndim}). Re-download it."
        )
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    expected = int(np.prod(shape))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != expected:
        raise DataError(
            f"{shell_path(path)} is truncated: its header promises {expected} bytes of data, the file "
            f"holds {body.size}. Re-download it."
        )
    return body.reshape(shape).copy()  # writable, independent of the file buffer


def _find_idx_folder(root: Path, name: str) -> Path | None:
    for folder in (root, root / "raw", root / _TORCHVISION_FOLDER[name] / "raw"):
        if all((folder / f).exists() or (folder / f"{f}.gz").exists() for f in IDX_FILES.values()):
            return folder
    return None


def _download(constructor, root: Path) -> None:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        constructor(str(root), train=True, download=True)
        constructor(str(root), train=False, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def load_mnist_like(
    name: Literal["mnist", "fashion_mnist"], root: str, download: bool = True, system_root: str | None = None
) -> TensorSplits:
    """MNIST or Fashion-MNIST from torchvision's layout or a plain folder of the four idx files.

    ``root`` is searched first, then ``system_root`` (a distribution's copy, e.g. Debian's
    dataset-fashion-mnist in /usr/share/datasets/fashion-mnist), and only then is ``root`` downloaded into.
    """
    import torchvision

    root = Path(root).expanduser()
    folder = _find_idx_folder(root, name)
    if folder is None and system_root is not None and Path(system_root).is_dir():
        folder = _find_idx_folder(Path(system_root), name)
    download_error = None
    if folder is None and download:
        constructor = getattr(torchvision.datasets, _TORCHVISION_FOLDER[name])
        try:
            _download(constructor, root)
        except Exception as err:
            download_error = err
        folder = _find_idx_folder(root, name)
    if folder is None:
        files = ", ".join(IDX_FILES.values())
        why = f" Downloading failed ({download_error})." if download_error else ""
        raise DataError(
            f"{name} not found under {shell_path(root.resolve())}.{why} Put the four idx files ({files}; "
            f"gzipped or not) in that folder, or point dataset.root= at the folder that "
            f"holds them (torchvision's {_TORCHVISION_FOLDER[name]}/raw layout works too)."
        )

    def read(key):
        plain = folder / IDX_FILES[key]
        return read_idx(plain if plain.exists() else plain.with_name(plain.name + ".gz"))

    return _as_splits(
        read("train_images"), read("train_labels"), read("test_images"), read("test_labels"), _CLASSES[name]
    )


# -- CIFAR ------------------------------------------------------------------------------------------

_CIFAR = {
    "cifar10": ("CIFAR10", "cifar-10-python.tar.gz", "cifar-10-batches-py"),
    "cifar100": ("CIFAR100", "cifar-100-python.tar.gz", "cifar-100-python"),
}


def load_cifar(name: Literal["cifar10", "cifar100"], root: str, download: bool = True) -> TensorSplits:
    """CIFAR-10/100 through torchvision (downloads when online and ``download`` is true)."""
    import torchvision

    cls_name, archive, folder = _CIFAR[name]
    constructor = getattr(torchvision.datasets, cls_name)
    root = Path(root).expanduser()

    def open_split(train):
        return constructor(str(root), train=train, download=False)

    try:
        train, test = open_split(True), open_split(False)
    except RuntimeError:
        download_error = "downloading is off (dataset.download=false)"
        if download:
            try:
                _download(constructor, root)
                train, test = open_split(True), open_split(False)
                download_error = None
            except Exception as err:
                download_error = f"downloading failed: {err}"
        if download_error:
            raise DataError(
                f"{name.upper()} was not found in {shell_path(root.resolve())} and {download_error}. Put "
                f"{archive} (from https://www.cs.toronto.edu/~kriz/{archive}) in {shell_path(root.resolve())}/, or "
                f"extract it there so that {shell_path(root.resolve() / folder)}/ exists, then run again; "
                f"or point dataset.root= (or $PODEXP_DATA) at the folder that already holds it."
            ) from None
    return _as_splits(train.data, train.targets, test.data, test.targets, train.classes)
