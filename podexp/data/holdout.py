"""The validation split: a seeded, class-stratified hold-out from the training split (``dataset.val_fraction``).

One rule for every dataset, held in memory or streamed (ImageNet-N): for each class, in label order, one
generator ``numpy.random.default_rng(dataset.split_seed)`` draws ``round(val_fraction * n_c)`` of the
class's ``n_c`` training images (at least one, and never all of them), in the order the images are
listed (sorted file names for folder datasets). The draw does not depend on the run's seed, so every
run of a sweep is tuned on the same images, and they never overlap the test split.
"""

from __future__ import annotations

import numpy as np


def holdout_mask(labels, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask over ``labels`` (a 1-D sequence of class indices): True for the held-out images."""
    labels = np.asarray(labels)
    mask = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return mask
    rng = np.random.default_rng(seed)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        count = min(max(1, int(round(len(idx) * fraction))), len(idx) - 1)
        if count > 0:
            mask[rng.choice(idx, size=count, replace=False)] = True
    return mask
