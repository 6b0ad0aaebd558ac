"""ILSVRC-2012: move the 50,000 flat val images into ``val/<wnid>/`` folders, once.

Labels come from the official devkit (ILSVRC2012_devkit_t12.tar.gz):

* ``data/ILSVRC2012_validation_ground_truth.txt``: one ILSVRC2012_ID (1..1000) per line, line i for
  the i-th val image in sorted file-name order (ILSVRC2012_val_00000001.JPEG, ...);
* the synset mapping from ILSVRC2012_ID to wnid: the devkit's ``data/meta.mat`` (read with scipy), or
  a text file whose line i starts with the wnid of ILSVRC2012_ID i.

Running it again, or after an interrupted run, only moves images still lying flat in ``val/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from podexp.data.folders import is_image
from podexp.errors import DataError

log = logging.getLogger(__name__)


def read_synsets(path: Path) -> dict[int, str]:
    """{ILSVRC2012_ID: wnid} from the devkit's meta.mat or a text file (line i = ID i)."""
    path = Path(path)
    if path.suffix == ".mat":
        from scipy.io import loadmat

        synsets = loadmat(str(path), squeeze_me=True)["synsets"]
        return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}
    lines = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    return {i: wnid for i, wnid in enumerate(lines, 1)}


def read_ground_truth(path: Path) -> list[int]:
    try:
        return [int(line) for line in Path(path).read_text().split()]
    except ValueError:
        raise DataError(
            f"{path} must hold one integer ILSVRC2012_ID per line "
            f"(data/ILSVRC2012_validation_ground_truth.txt of the devkit)."
        ) from None


def arrange_imagenet_val(val_dir: Path, ground_truth: Path, synsets: Path) -> int:
    """Move ``val_dir/*.JPEG`` into ``val_dir/<wnid>/``; returns the number of images moved."""
    val_dir = Path(val_dir)
    if not val_dir.is_dir():
        raise DataError(f"{val_dir} does not exist: extract ILSVRC2012_img_val.tar into it first.")
    id_to_wnid = read_synsets(synsets)
    labels = read_ground_truth(ground_truth)
    flat = sorted(p.name for p in val_dir.iterdir() if p.is_file() and is_image(p.name))
    if not flat:
        return 0
    moved = [f.name for d in val_dir.iterdir() if d.is_dir() for f in d.iterdir() if is_image(f.name)]
    if len(flat) + len(moved) != len(labels):
        raise DataError(
            f"{val_dir} holds {len(flat) + len(moved)} val images but {ground_truth} has "
            f"{len(labels)} labels: the folder or the ground-truth file is incomplete."
        )
    # the i-th label belongs to the i-th image of the full sorted list, flat or already moved
    label_of = dict(zip(sorted(flat + moved), labels))
    unknown = sorted({label_of[n] for n in flat} - set(id_to_wnid))
    if unknown:
        raise DataError(f"{synsets} has no wnid for ILSVRC2012_ID(s) {unknown[:5]}: wrong synset file?")
    for name in flat:
        target = val_dir / id_to_wnid[label_of[name]] / name
        target.parent.mkdir(exist_ok=True)
        (val_dir / name).replace(target)
    log.info("ImageNet: moved %d val images into class folders under %s", len(flat), val_dir)
    return len(flat)
