"""FaceScrub-100: pick identities and a train/test split by a fixed rule, write a 64x64 ImageFolder tree.

The paper uses 100 FaceScrub identities with 3,896 test images but publishes neither the identities
nor the split. The rule here (documented in docs/datasets.md) depends only on the source files:

1. Source: ``SRC/<identity>/<image>`` (face crops; any image format). Files that cannot be decoded
   are skipped and listed; byte-identical duplicates inside an identity are kept once (first name).
2. Identities: the ``num_identities`` with the most usable images; ties by name (ascending).
3. Split per identity: images sorted by (SHA-256 of the file, name); the first
   ``floor(test_fraction * n + 0.5)`` (at least 1) are test, the rest train.
4. Each image is resized to ``size`` x ``size`` (RGB, bicubic, aspect ratio not kept) and written as
   ``DST/<split>/<identity>/<sha256[:16]>.png``; ``DST/manifest.json`` lists every image with its
   source, checksums and split.

Idempotent: outputs that exist with the recorded checksum are left alone, files of a previous
manifest that the plan no longer holds are removed, and the manifest is rewritten only if it changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from podexp.data.folders import is_image
from podexp.errors import DataError
from podexp.io import atomic_write, atomic_write_text, read_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Entry:
    identity: str
    split: str
    source: str  # relative to SRC
    source_sha256: str

    @property
    def output(self) -> str:
        return f"{self.split}/{self.identity}/{self.source_sha256[:16]}.png"


def _usable_images(folder: Path) -> tuple[list[tuple[str, Path]], list[Path]]:
    """([(sha256, path)] of decodable, distinct images sorted by (hash, name)], [broken paths])."""
    from PIL import Image

    seen, usable, broken = set(), [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image(p.name)):
        try:
            with Image.open(path) as img:
                img.load()  # a full decode: verify() misses truncated data
        except (OSError, ValueError, SyntaxError):
            broken.append(path)
            continue
        digest = sha256(path)
        if digest not in seen:
            seen.add(digest)
            usable.append((digest, path))
    return sorted(usable, key=lambda item: (item[0], item[1].name)), broken


def plan_split(src: Path, num_identities: int, test_fraction: float) -> tuple[list[Entry], list[Path]]:
    """The entries of the rule above and the skipped (broken) source files."""
    src = Path(src)
    if not src.is_dir():
        raise DataError(
            f"FaceScrub source folder {src} does not exist. Pass the folder that holds one "
            f"sub-folder of face images per identity."
        )
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must lie in (0, 1); got {test_fraction}.")
    per_identity, broken = {}, []
    for folder in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        usable, bad = _usable_images(folder)
        broken += bad
        if usable:
            per_identity[folder.name] = usable
    if len(per_identity) < num_identities:
        raise DataError(
            f"{src} holds {len(per_identity)} identity folders with images; "
            f"{num_identities} are needed. Expected SRC/<identity>/<image files>."
        )
    ranked = sorted(per_identity, key=lambda name: (-len(per_identity[name]), name))[:num_identities]
    entries = []
    for identity in sorted(ranked):
        images = per_identity[identity]
        n_test = max(1, math.floor(test_fraction * len(images) + 0.5))
        if n_test >= len(images):
            raise DataError(
                f"Identity {identity} has only {len(images)} usable image(s): too few to split into train and test."
            )
        for rank, (digest, path) in enumerate(images):
            entries.append(Entry(identity, "test" if rank < n_test else "train", str(path.relative_to(src)), digest))
    return entries, broken


def _write_image(source: Path, target: Path, size: int) -> None:
    from PIL import Image

    with Image.open(source) as img:
        resized = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    atomic_write(target, lambda handle: resized.save(handle, format="PNG"))


def prepare_facescrub(
    src: Path, dst: Path, num_identities: int = 100, test_fraction: float = 0.15, size: int = 64
) -> dict:
    """Apply the rule; returns a summary {written, removed, kept, train, test, skipped}."""
    src, dst = Path(src), Path(dst)
    entries, broken = plan_split(src, num_identities, test_fraction)
    old_path = dst / MANIFEST
    old = read_json(old_path) or {"images": []}
    old_sums = {e["output"]: e["output_sha256"] for e in old["images"]}
    images, written, kept = [], 0, 0
    for entry in entries:
        target = dst / entry.output
        recorded = old_sums.get(entry.output)
        if recorded is None or not target.is_file() or sha256(target) != recorded:
            _write_image(src / entry.source, target, size)
            written += 1
        else:
            kept += 1
        images.append(
            {
                "identity": entry.identity,
                "split": entry.split,
                "source": entry.source,
                "source_sha256": entry.source_sha256,
                "output": entry.output,
                "output_sha256": sha256(target),
            }
        )
    planned = {e.output for e in entries}
    removed = 0
    for stale in sorted(set(old_sums) - planned):
        if (dst / stale).is_file():
            (dst / stale).unlink()
            removed += 1
    for split in ("train", "test"):
        for folder in sorted((dst / split).glob("*")) if (dst / split).is_dir() else []:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    counts = {s: sum(e.split == s for e in entries) for s in ("train", "test")}
    manifest = {
        "rule": {
            "num_identities": num_identities,
            "test_fraction": test_fraction,
            "size": size,
            "identities": "most usable images, ties by name",
            "split": "per identity, sorted by (sha256, name): first floor(f*n+0.5) are test",
        },
        "identities": sorted({e.identity for e in entries}),
        "counts": counts,
        "skipped_unreadable": [str(p.relative_to(src)) for p in broken],
        "images": images,
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    if not old_path.is_file() or old_path.read_text() != text:
        atomic_write_text(text, old_path)
    if broken:
        log.warning(
            "FaceScrub: skipped %d unreadable source file(s): %s", len(broken), ", ".join(str(p) for p in broken[:20])
        )
    return {"written": written, "kept": kept, "removed": removed, **counts, "skipped": len(broken)}
