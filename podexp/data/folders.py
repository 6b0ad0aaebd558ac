"""Image files in class folders: listing, checking, decoding into uint8 arrays (with an on-disk cache).

Shared by the folder datasets (Tiny ImageNet, FaceScrub, ImageNet-N). Class order is always the sorted
order of the class-folder names, so class k <-> PEDCC row k.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from podexp.errors import DataError
from podexp.io import atomic_write

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
_MAX_LISTED = 20  # paths named in one error message


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: Path) -> list[Path]:
    """Every image file below ``folder`` (recursively), sorted by path."""
    found = []
    for dirpath, _, filenames in os.walk(folder):
        found += [Path(dirpath) / f for f in filenames if is_image(f)]
    return sorted(found)


def class_folders(split_dir: Path) -> list[str]:
    """Sorted names of the sub-folders of ``split_dir`` (one per class)."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def name_paths(paths: list[Path], limit: int = _MAX_LISTED) -> str:
    shown = ", ".join(str(p) for p in paths[:limit])
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return shown + more


def scan_split(
    split_dir: Path,
    classes: list[str],
    per_class: int | None,
    *,
    dataset: str,
    how_to_fix: str,
    images_subdir: str = "",
) -> tuple[list[Path], np.ndarray]:
    """(paths, labels) of ``split_dir/<class>/<images_subdir>/*`` for ``classes`` (label = index).

    ``per_class``: the exact number of images every class must hold (None: at least one).
    """
    paths, labels, wrong = [], [], []
    for label, name in enumerate(classes):
        folder = split_dir / name / images_subdir
        files = list_images(folder) if folder.is_dir() else []
        expected_ok = len(files) == per_class if per_class is not None else len(files) > 0
        if not expected_ok:
            wrong.append(f"{folder} holds {len(files)}")
        paths += files
        labels += [label] * len(files)
    if wrong:
        want = f"exactly {per_class}" if per_class is not None else "at least one"
        raise DataError(
            f"{dataset}: every class folder must hold {want} image(s), but "
            f"{'; '.join(wrong[:5])}{' (and more)' if len(wrong) > 5 else ''}. The dataset is "
            f"incomplete or laid out differently. {how_to_fix}"
        )
    return paths, np.asarray(labels, dtype=np.int64)


def _decode(path: Path, size: int, channels: int) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if channels == 3 else "L")
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError):
        return None
    return array if channels == 3 else array[:, :, None]


def decode_images(paths: list[Path], size: int, channels: int = 3, *, dataset: str) -> np.ndarray:
    """Decode ``paths`` into an N x size x size x C uint8 array; images of another size are resized
    (bilinear). Unreadable files raise one DataError naming them."""
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    broken = []
    workers = min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        for i, array in enumerate(pool.map(lambda p: _decode(p, size, channels), paths, chunksize=256)):
            if array is None:
                broken.append(paths[i])
            else:
                out[i] = array
    if broken:
        raise DataError(
            f"{dataset}: {len(broken)} image file(s) cannot be decoded (corrupt or not "
            f"images): {name_paths(broken)}. Replace them from the original archive or "
            f"delete them and prepare the dataset again."
        )
    return out


def file_list_key(root: Path, paths: list[Path], size: int, channels: int) -> str:
    """A digest of (relative path, byte size) of every file plus the decode settings."""
    digest = hashlib.sha1(f"{size}x{channels}".encode())
    for p in paths:
        digest.update(f"\n{p.relative_to(root)}\t{p.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def decode_cached(
    root: Path, splits: dict[str, list[Path]], size: int, channels: int, *, dataset: str, cache: bool
) -> dict[str, np.ndarray]:
    """Decoded images of every split, read from / written to ``root/.podexp_decoded_<key>.npz``.

    The key digests the file list (relative paths and sizes) and the decode size, so adding, removing
    or replacing a file decodes again. A read-only ``root`` just skips writing the cache.
    """
    everything = [p for paths in splits.values() for p in paths]
    cache_file = root / f".podexp_decoded_{file_list_key(root, everything, size, channels)}.npz"
    if cache and cache_file.exists():
        try:
            with np.load(cache_file) as stored:
                arrays = {name: stored[name] for name in splits}
            if all(len(arrays[n]) == len(splits[n]) for n in splits):
                return arrays
        except (OSError, ValueError, KeyError):
            log.warning("ignoring the unreadable decode cache %s", cache_file)
    log.info("decoding %d images of %s (once; cached in %s)", len(everything), dataset, cache_file.name)
    arrays = {name: decode_images(paths, size, channels, dataset=dataset) for name, paths in splits.items()}
    if cache:
        try:
            atomic_write(cache_file, lambda handle: np.savez(handle, **arrays))
            for stale in root.glob(".podexp_decoded_*.npz"):
                if stale != cache_file:
                    stale.unlink(missing_ok=True)
        except OSError as err:
            log.warning("could not write the decode cache %s (%s); decoding again next time", cache_file, err)
    return arrays
