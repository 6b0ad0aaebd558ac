"""A DataLoader path for image folders too large to hold in memory (ImageNet-N at 224 px).

It offers the ``TensorLoader`` interface: ``set_epoch(epoch, start_step)``, ``__len__`` and batches of
normalised float images (and int64 labels) on the device. Resumes are exact: an epoch's order is the
permutation seeded by (seed, epoch), and every sample's random augmentation is drawn from torch's
generator seeded by (seed, epoch, step, position in batch), whichever worker decodes it.
Workers decode and augment to uint8 tensors; normalisation happens on the device.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from podexp.data.folders import name_paths
from podexp.data.loaders import _MIX, _seeded
from podexp.data.transforms import normalise
from podexp.errors import DataError


def sample_seed(*keys: int) -> int:
    value = 0
    for key in keys:
        value = (value * _MIX + int(key) + 1) % (2**62)
    return value


class _ImageFiles(Dataset):
    """Item ``(index, seed)`` -> (uint8 C x H x W tensor or None, label, path of an unreadable file)."""

    def __init__(self, paths: list[Path], labels: list[int], transform):
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item):
        from PIL import Image

        index, seed = item
        path = self.paths[index]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
        except (OSError, ValueError, SyntaxError):
            return None, self.labels[index], str(path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(img), self.labels[index], None


def _collate(items):
    broken = [path for _, _, path in items if path is not None]
    if broken:
        return None, None, broken
    return (
        torch.stack([image for image, _, _ in items]),
        torch.tensor([label for _, label, _ in items], dtype=torch.int64),
        [],
    )


class _EpochBatches(Sampler):
    """Lists of (index, augmentation seed) for one epoch from ``start_step`` on (sharded by rank)."""

    def __init__(self, n: int, batch_size: int, *, train: bool, seed: int, rank: int, world_size: int):
        self.n, self.batch_size, self.train, self.seed = n, batch_size, train, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_step = 0, 0

    def _per_rank(self) -> int:
        return self.n // self.world_size if self.train else -(-self.n // self.world_size)

    def __len__(self) -> int:
        per_rank = self._per_rank()
        return per_rank // self.batch_size if self.train else -(-per_rank // self.batch_size)

    def __iter__(self):
        if self.train:
            order = torch.randperm(self.n, generator=_seeded(torch.device("cpu"), self.seed, self.epoch))
        else:
            order = torch.arange(self.n)
        per_rank = self._per_rank()
        order = order[self.rank * per_rank : (self.rank + 1) * per_rank].tolist()
        for step in range(self.start_step, len(self)):
            chunk = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield [(index, sample_seed(self.seed, self.epoch, step, j)) for j, index in enumerate(chunk)]


class FolderStreamLoader:
    """Batches of image files decoded by DataLoader workers, normalised on ``device``."""

    def __init__(
        self,
        paths,
        labels,
        batch_size,
        mean,
        std,
        *,
        train: bool,
        transform,
        seed=0,
        device="cpu",
        rank=0,
        world_size=1,
        channels_last=False,
        num_workers=8,
        prefetch_factor=4,
    ):
        self.device = torch.device(device)
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=self.device)
        self.channels_last = channels_last
        self.batches = _EpochBatches(
            len(paths), int(batch_size), train=train, seed=int(seed), rank=rank, world_size=world_size
        )
        workers = {"persistent_workers": True, "prefetch_factor": prefetch_factor} if num_workers else {}
        self.loader = DataLoader(
            _ImageFiles(list(paths), list(labels), transform),
            batch_sampler=self.batches,
            num_workers=num_workers,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
            **workers,
        )

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.batches.epoch, self.batches.start_step = epoch, start_step

    @property
    def num_samples(self) -> int:
        """Images in the split (all ranks together)."""
        return self.batches.n

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for images, labels, broken in self.loader:
            if broken:
                raise DataError(
                    f"{len(broken)} image file(s) cannot be decoded (corrupt or not images): "
                    f"{name_paths(broken)}. Replace them from the original archive."
                )
            images = normalise(images.to(self.device, non_blocking=True), self.mean, self.std)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, labels.to(self.device, non_blocking=True)
        self.batches.start_step = 0
