"""Tiny ImageNet: move the official val images into class folders, once.

The archive (http://cs231n.stanford.edu/tiny-imagenet-200.zip) holds ``train/<wnid>/images/*.JPEG``
and a flat ``val/images/*.JPEG`` whose labels are in ``val/val_annotations.txt`` (tab-separated:
file name, wnid, box). ``arrange_val`` moves each val image to ``val/<wnid>/images/`` (the train
layout), keeps the annotation file and removes the emptied ``val/images``. Running it again, or after
an interrupted run, only moves what is still in ``val/images``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from podexp.errors import DataError

log = logging.getLogger(__name__)

ANNOTATIONS = "val_annotations.txt"


def read_val_annotations(path: Path) -> dict[str, str]:
    """{file name: wnid} from ``val_annotations.txt``."""
    labels = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(
                f"{path} line {number} is not '<file>\\t<wnid>\\t...': {line!r}. "
                f"Re-extract it from tiny-imagenet-200.zip."
            )
        labels[fields[0]] = fields[1]
    return labels


def val_needs_arranging(root: Path) -> bool:
    return (Path(root) / "val" / "images").is_dir()


def arrange_val(root: Path) -> int:
    """Move ``root/val/images/*`` into ``root/val/<wnid>/images/``; returns the number moved."""
    val = Path(root) / "val"
    flat = val / "images"
    if not val.is_dir():
        raise DataError(
            f"{val} does not exist: {root} is not an unzipped tiny-imagenet-200 folder "
            f"(expected train/, val/ and wnids.txt inside). Unzip tiny-imagenet-200.zip and "
            f"pass the tiny-imagenet-200 folder."
        )
    if not flat.is_dir():
        return 0
    annotations = val / ANNOTATIONS
    if not annotations.is_file():
        raise DataError(
            f"{flat} exists but {annotations} does not, so the val images cannot be "
            f"sorted into classes. Re-extract val/ from tiny-imagenet-200.zip."
        )
    labels = read_val_annotations(annotations)
    unlabelled = sorted(f.name for f in flat.iterdir() if f.name not in labels)
    if unlabelled:
        raise DataError(
            f"{len(unlabelled)} file(s) in {flat} have no line in {annotations} "
            f"(e.g. {unlabelled[:3]}). Re-extract val/ from tiny-imagenet-200.zip."
        )
    moved = 0
    for name in sorted(p.name for p in flat.iterdir()):
        target = val / labels[name] / "images" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (flat / name).replace(target)
        moved += 1
    flat.rmdir()
    log.info("Tiny ImageNet: moved %d val images into class folders under %s", moved, val)
    return moved
