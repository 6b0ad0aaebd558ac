"""Tiny on-disk image trees in the official layouts (Tiny ImageNet, FaceScrub source, ILSVRC-2012)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, size: int, seed: int, fmt: str = "JPEG") -> None:
    """A random RGB image whose mean colour depends on ``seed % 3`` (so classes differ)."""
    rng = np.random.default_rng(seed)
    base = np.zeros(3)
    base[seed % 3] = 160
    pixels = np.clip(base + rng.integers(0, 90, (size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file and folder below ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            stat = path.stat()
            out[str(path.relative_to(root))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return out


def tiny_imagenet_tree(
    root: Path, wnids: list[str], train_per_class: int, val_per_class: int, size: int = 16
) -> dict[str, str]:
    """The official archive layout; returns {val file name: wnid}."""
    (root / "wnids.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for c, wnid in enumerate(wnids):
        for i in range(train_per_class):
            write_image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", size, seed=c + 3 * i)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    labels, lines = {}, []
    for i in range(val_per_class * len(wnids)):
        wnid = wnids[i % len(wnids)]
        name = f"val_{i}.JPEG"
        write_image(root / "val" / "images" / name, size, seed=wnids.index(wnid) + 3 * (i + 50))
        labels[name] = wnid
        lines.append(f"{name}\t{wnid}\t0\t0\t{size - 1}\t{size - 1}")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return labels


def facescrub_source(src: Path, counts: dict[str, int], size: int = 20) -> None:
    """SRC/<identity>/<k>.jpg with ``counts[identity]`` distinct images each."""
    for c, (identity, n) in enumerate(sorted(counts.items())):
        for i in range(n):
            write_image(src / identity / f"{i:03d}.jpg", size, seed=c + 3 * (i + 7 * c))


def ilsvrc_tree(root: Path, wnids: list[str], train_per_class: int, val_per_class: int, size: int = 24) -> list[str]:
    """train/<wnid>/*.JPEG and a flat val/ of ILSVRC2012_val_%08d.JPEG; returns each val image's wnid."""
    for c, wnid in enumerate(wnids):
        for i in range(train_per_class):
            write_image(root / "train" / wnid / f"{wnid}_{i}.JPEG", size, seed=c + 3 * i)
    val_wnids = []
    for i in range(val_per_class * len(wnids)):
        wnid = wnids[(i * 7) % len(wnids)]  # not in class order
        write_image(root / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG", size, seed=wnids.index(wnid) + 3 * i)
        val_wnids.append(wnid)
    return val_wnids
