"""Batched augmentation on whatever device holds the images (docs/method.md §5).

Random crop with zero padding and horizontal flip (p = 0.5), drawn per sample from a seeded generator,
then normalisation. Equivalent in distribution to torchvision's
``RandomCrop(size, padding=p) -> RandomHorizontalFlip() -> ToTensor() -> Normalize(mean, std)``:
the padding is applied to the uint8 image (value 0) before normalising, as torchvision does.
"""

from __future__ import annotations

import torch


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random crop of a zero-padded uint8 batch (B x C x H x W) back to H x W.

    Offsets (dy, dx) are uniform on {0..2p}^2 per sample; output pixel (i, j) is padded pixel
    (dy + i, dx + j), gathered through one flat index per sample (no per-element 4-D indexing).
    """
    if padding <= 0:
        return images
    batch, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    device = images.device
    offset_y = torch.randint(0, 2 * padding + 1, (batch,), device=device, generator=generator)
    offset_x = torch.randint(0, 2 * padding + 1, (batch,), device=device, generator=generator)
    rows = offset_y[:, None] + torch.arange(height, device=device)
    cols = offset_x[:, None] + torch.arange(width, device=device)
    flat = (rows[:, :, None] * (width + 2 * padding) + cols[:, None, :]).view(batch, 1, height * width)
    cropped = padded.view(batch, channels, -1).gather(2, flat.expand(batch, channels, height * width))
    return cropped.view(batch, channels, height, width)


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1] -> (x - mean) / std, per channel, as x * (1 / 255 std) - mean / std.

    Element-wise, so the output keeps the input's memory format (channels_last stays channels_last).
    """
    scale = (1.0 / (255.0 * std))[:, None, None]
    return images.float().mul_(scale).sub_((mean / std)[:, None, None])


def augment(images: torch.Tensor, crop_padding: int, hflip: bool, generator: torch.Generator) -> torch.Tensor:
    images = random_crop(images, crop_padding, generator)
    return random_hflip(images, generator) if hflip else images
