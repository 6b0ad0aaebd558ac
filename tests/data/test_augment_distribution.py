"""The device-side augmentation draws what torchvision's CIFAR pipeline draws.

torchvision: RandomCrop(32, padding=4) -> RandomHorizontalFlip() -> ToTensor() -> Normalize(mean, std).
podexp: TensorLoader(crop_padding=4, hflip=True) over uint8 tensors. Compared on many draws: the crop
offsets and flips read back from a marker image, and the per-pixel mean/std of augmented images.
"""

import numpy as np
import pytest
import torch

SIZE, PAD, MARK = 32, 4, 100
DRAWS = 4000


def marker_image() -> np.ndarray:
    """H x W x 3 uint8: channel 0 = row + 1, channel 1 = column + 1, channel 2 = MARK (padding reads 0)."""
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    return np.stack([rows + 1, cols + 1, np.full_like(rows, MARK)], -1).astype(np.uint8)


def read_offsets(image: np.ndarray) -> tuple[int, int, bool]:
    """(dy, dx, flipped) of one augmented C x H x W uint8 marker: output (i, j) is padded pixel
    (dy + i, dx + j) before the flip, i.e. source pixel (dy + i - PAD, dx + j - PAD)."""
    valid_rows, valid_cols = np.nonzero(image[2] == MARK)
    i, row = valid_rows[0], valid_rows == valid_rows[0]
    j0, j1 = valid_cols[row][0], valid_cols[row][-1]
    flipped = image[1, i, j1] < image[1, i, j0]
    column = SIZE - 1 - j0 if flipped else j0
    return int(image[0, i, j0]) - 1 - i + PAD, int(image[1, i, j0]) - 1 - column + PAD, bool(flipped)


def podexp_draws(images: np.ndarray, n: int, mean, std) -> torch.Tensor:
    """``n`` augmented, normalised images from the TensorLoader, over as many epochs as needed."""
    from podexp.data.loaders import TensorLoader

    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    loader = TensorLoader(
        tensor,
        torch.zeros(len(images), dtype=torch.int64),
        min(250, len(images)),
        mean,
        std,
        train=True,
        crop_padding=PAD,
        hflip=True,
        seed=7,
    )
    out, epoch = [], 0
    while sum(len(x) for x in out) < n:
        loader.set_epoch(epoch)
        out += [x for x, _ in loader]
        epoch += 1
    return torch.cat(out)[:n]


def torchvision_draws(images: np.ndarray, n: int, mean, std) -> torch.Tensor:
    from PIL import Image
    from torchvision import transforms

    pipeline = transforms.Compose(
        [
            transforms.RandomCrop(SIZE, padding=PAD),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    torch.manual_seed(7)
    pil = [Image.fromarray(img) for img in images]
    return torch.stack([pipeline(pil[k % len(pil)]) for k in range(n)])


def as_uint8(batch: torch.Tensor) -> np.ndarray:
    """Undo Normalize(0, 1) and ToTensor's /255 back to exact integers."""
    return (batch * 255).round().to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def offsets():
    markers = np.repeat(marker_image()[None], 500, 0)
    zero, one = [0.0] * 3, [1.0] * 3
    return {
        name: np.array([read_offsets(img) for img in as_uint8(draw(markers, DRAWS, zero, one))])
        for name, draw in (("podexp", podexp_draws), ("torchvision", torchvision_draws))
    }


def chi_square_uniform(values: np.ndarray, k: int) -> float:
    counts = np.bincount(values, minlength=k)
    assert len(counts) == k, "a value outside 0..k-1"
    expected = len(values) / k
    return float(((counts - expected) ** 2 / expected).sum())


def test_marker_reader_is_exact_on_hand_made_crops():
    padded = np.pad(marker_image(), ((PAD, PAD), (PAD, PAD), (0, 0)))
    crop = padded[3 : 3 + SIZE, 7 : 7 + SIZE].transpose(2, 0, 1)
    assert read_offsets(crop) == (3, 7, False)
    assert read_offsets(crop[:, :, ::-1]) == (3, 7, True)


@pytest.mark.parametrize("name", ["podexp", "torchvision"])
def test_crop_offsets_are_uniform_and_flip_rate_is_one_half(offsets, name):
    dy, dx, flip = offsets[name].T
    # chi-square with 8 degrees of freedom: P(> 26.1) = 0.001; joint (dy, dx): 80 dof, P(> 124.8) = 0.001
    assert chi_square_uniform(dy, 2 * PAD + 1) < 26.1
    assert chi_square_uniform(dx, 2 * PAD + 1) < 26.1
    assert chi_square_uniform(dy * (2 * PAD + 1) + dx, (2 * PAD + 1) ** 2) < 124.8
    assert abs(flip.mean() - 0.5) < 4 * np.sqrt(0.25 / DRAWS)
    # the flip is drawn independently of the crop
    assert abs(dy[flip == 1].mean() - dy[flip == 0].mean()) < 0.25


def test_offset_histograms_match_between_podexp_and_torchvision(offsets):
    # two-sample chi-square, P(> limit) = 0.001: dy and dx over 9 bins (8 dof), the flip over 2 (1 dof)
    for column, bins, limit in ((0, 2 * PAD + 1, 26.1), (1, 2 * PAD + 1, 26.1), (2, 2, 10.8)):
        a, b = (np.bincount(offsets[n][:, column], minlength=bins) for n in ("podexp", "torchvision"))
        assert len(a) == len(b) == bins
        pooled = (a + b) / 2
        assert ((a - pooled) ** 2 / pooled + (b - pooled) ** 2 / pooled).sum() < limit


def test_per_pixel_mean_and_std_match_torchvision():
    """Structured images (a bright off-centre square on a gradient): augmentation moves and pads them,
    so border and square pixels have position-dependent statistics that a wrong padding or crop breaks."""
    rng = np.random.default_rng(0)
    base = np.zeros((64, SIZE, SIZE, 3), dtype=np.float64)
    base += np.linspace(40, 200, SIZE)[None, None, :, None]
    for k in range(64):
        r, c = rng.integers(2, 20, 2)
        base[k, r : r + 10, c : c + 10] = 250
    images = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    mean, std = [0.507, 0.487, 0.441], [0.267, 0.256, 0.276]
    ours, theirs = podexp_draws(images, DRAWS, mean, std), torchvision_draws(images, DRAWS, mean, std)
    assert ours.shape == theirs.shape == (DRAWS, 3, SIZE, SIZE)
    m1, m2 = ours.double().mean(0), theirs.double().mean(0)
    se = ((ours.double().var(0) + theirs.double().var(0)) / DRAWS).sqrt().clamp_min(1e-6)
    assert ((m1 - m2).abs() / se).max() < 5.0  # per pixel, 3,072 two-sample z-tests
    s1, s2 = ours.double().std(0), theirs.double().std(0)
    assert (s1 - s2).abs().max() < 0.1 * s2.max()
    # zero padding before Normalize: output pixel (0, 0) is padding when dy < 4 or (unflipped) dx < 4 or
    # (flipped) dx > 4, i.e. with probability 1 - (5/9)^2 either way
    padding_value = (-torch.tensor(mean) / torch.tensor(std))[None, :]
    expected = 1 - (5 / 9) ** 2
    for batch in (ours, theirs):
        share = torch.isclose(batch[:, :, 0, 0], padding_value, atol=1e-4).all(1).double().mean().item()
        assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / DRAWS)
