"""A compact loader for datasets held whole in memory (on the GPU when there is one).

An epoch is one permutation of the split drawn from a generator seeded by (seed, epoch); each batch's
augmentation comes from a generator seeded by (seed, epoch, step). No state is carried between
batches, so a run resumed at (epoch, step) sees exactly the batches it would have seen.
"""

from __future__ import annotations

import torch

from podexp.data.transforms import augment, normalise
from podexp.errors import ConfigError

_MIX = 1_000_003  # spreads (seed, epoch, step) over distinct generator seeds


def _seeded(device: torch.device, *keys: int) -> torch.Generator:
    value = 0
    for key in keys:
        value = (value * _MIX + int(key) + 1) % (2**62)
    return torch.Generator(device=device).manual_seed(value)


def check_batch_fits(batch_size: int, train_size: int, world_size: int) -> None:
    """The global batch ``dataset.batch_size`` must split evenly over the torchrun processes and fit in
    the training split (known once the data is read)."""
    if batch_size % world_size:
        raise ConfigError(
            f"dataset.batch_size={batch_size} is the global batch and must divide evenly over the "
            f"{world_size} processes of this torchrun job. Pick a multiple of {world_size}."
        )
    if train_size < batch_size:
        raise ConfigError(
            f"dataset.batch_size={batch_size} is larger than the training split ({train_size} "
            f"images): no full batch fits. Lower dataset.batch_size."
        )


class TensorLoader:
    """Iterates (normalised float images, int64 labels) batches over uint8 tensors.

    ``rank``/``world_size`` shard every epoch's permutation for data parallelism.
    """

    def __init__(
        self,
        images,
        labels,
        batch_size,
        mean,
        std,
        *,
        train: bool,
        crop_padding=0,
        hflip=False,
        seed=0,
        device="cpu",
        drop_last=None,
        rank=0,
        world_size=1,
        channels_last=False,
    ):
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = int(batch_size)
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=self.device)
        self.train = train
        self.crop_padding, self.hflip = int(crop_padding), bool(hflip)
        self.seed = int(seed)
        self.drop_last = train if drop_last is None else drop_last
        self.rank, self.world_size = rank, world_size
        self.channels_last = channels_last
        self.epoch = 0
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    @property
    def num_samples(self) -> int:
        """Images in the split (all ranks together)."""
        return int(self.labels.shape[0])

    def _indices(self) -> torch.Tensor:
        n = self.labels.shape[0]
        if self.train:
            order = torch.randperm(n, device=self.device, generator=_seeded(self.device, self.seed, self.epoch))
        else:
            order = torch.arange(n, device=self.device)
        per_rank = n // self.world_size if self.train else -(-n // self.world_size)
        return order[self.rank * per_rank : (self.rank + 1) * per_rank]

    def __len__(self) -> int:
        n = self.labels.shape[0]
        n = n // self.world_size if self.train else -(-n // self.world_size)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = self._indices()
        for step in range(self.start_step, len(self)):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            images = self.images[idx]
            if self.train and (self.crop_padding or self.hflip):
                rank_key = (self.rank,) if self.world_size > 1 else ()  # ranks draw different crops
                gen = _seeded(self.device, self.seed, self.epoch, step + 1, *rank_key)
                images = augment(images, self.crop_padding, self.hflip, gen)
            if self.channels_last:  # on uint8, a quarter of the bytes; normalise keeps the layout
                images = images.contiguous(memory_format=torch.channels_last)
            images = normalise(images, self.mean, self.std)
            yield images, self.labels[idx]
        self.start_step = 0
