"""The dataset registry: one entry per dataset, held in memory or streamed from disk.

An in-memory entry is a reader, ``fn(**options) -> TensorSplits``. A streamed one (registered with
``streamed=True``) builds its own loaders: ``fn(seed=, device=, rank=, world_size=, channels_last=,
**options) -> (train loader, test loader, class names)``. Besides its own parameters every entry accepts
the common fields of ``DatasetFields``, which ``build_loaders`` reads (an entry that declares one of them
itself receives it too). Dataset configs interpolate ``data_root``, so there is no config group to take
defaults from: a dataset is built from its whole config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from podexp.errors import shell_path
from podexp.fields import Channels, LatentDim, NumClasses, Stem, ValFraction
from podexp.registry import PositiveInt, Registry, is_kind


@dataclass(frozen=True)
class DatasetFields:
    """The keys every dataset config holds (or may hold, where a default is given)."""

    num_classes: NumClasses
    latent_dim: LatentDim  # the width d of FC1 for this dataset (paper Table 3)
    image_size: PositiveInt
    channels: Channels
    stem: Stem
    batch_size: PositiveInt  # the global batch: under torchrun each process loads its share
    mean: list  # per channel, applied on the device
    std: list
    augment: dict  # crop_padding, hflip (streamed datasets: hflip)
    test_batch_size: PositiveInt = 512
    classes: list | None = None  # keep only these class indices, relabelled 0..len-1 in that order
    train_per_class: PositiveInt | None = None  # keep the first N training images of each class (CPU runs)
    test_per_class: PositiveInt | None = None  # and the first N test images of each class
    root: str | None = None  # the folder of the files (datasets read from disk)
    stand_in: bool = False  # debug=smoke: synthetic/digits images under another dataset's config
    val_fraction: ValFraction = 0.0  # > 0: hold this share of each class of the training split out as the
    # validation split (podexp.data.holdout); 0: none (the paper's tables)
    split_seed: int = 0  # the hold-out's draw, independent of the run's seed


DATASETS = Registry("dataset", context=("seed", "device", "rank", "world_size", "channels_last"), shared=DatasetFields)


def dataset_options(cfg: Mapping) -> dict:
    """The keys of a dataset config (without ``name``) that its entry reads. A stand-in (``stand_in=true``:
    debug=smoke puts synthetic or digits images under a real dataset's config) leaves unread the keys
    that belong to the dataset it replaces; a key no dataset knows is still reported."""
    options = {k: v for k, v in cfg.items() if k != "name"}
    if options.get("stand_in") and cfg.get("name") in DATASETS:
        accepted = DATASETS.signature(cfg["name"])
        elsewhere = {key for other in DATASETS.available() for key in DATASETS.signature(other)}
        options = {k: v for k, v in options.items() if k in accepted or k not in elsewhere}
    return options


def field_problems(name: str, values: Mapping) -> list[str]:
    """The rules that tie a dataset's fields together: one mean and std per channel, positive stds, and
    a data folder that exists (unless the dataset can download into it)."""
    problems = []
    channels = values.get("channels")
    for key in ("mean", "std"):
        given = values.get(key)
        if isinstance(channels, int) and (not is_kind(given, list) or len(given) != channels):
            problems.append(f"dataset.{key}={given}: needs one value per channel ({channels}).")
    std = values.get("std")
    if is_kind(std, list) and any(isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0 for s in std):
        problems.append(f"dataset.std={list(std)}: every value must be a positive number.")
    root, signature = values.get("root"), DATASETS.signature(name)
    downloadable = "download" in signature
    system_root = values.get("system_root")
    found_elsewhere = system_root is not None and Path(str(system_root)).is_dir()
    if (
        root is not None
        and not found_elsewhere
        and not (downloadable and values.get("download", signature.get("download").default))
        and not Path(str(root)).expanduser().is_dir()
    ):
        fix = ", or set dataset.download=true" if downloadable else " (docs/datasets.md says how to get them)"
        problems.append(
            f"dataset.root={shell_path(root)}: the folder does not exist"
            f"{' and dataset.download=false' if downloadable else ''}. Point dataset.root "
            f"(or $PODEXP_DATA) at the folder holding the {name} files{fix}."
        )
    return problems
