"""One-off re-arrangements of downloaded datasets (each idempotent: a second run changes nothing).

``tiny_imagenet``: val/images + val_annotations.txt -> val/<wnid>/images/.
``facescrub``: per-identity source folders -> the 100-identity 64x64 train/test ImageFolder tree.
``imagenet_val``: the flat ILSVRC-2012 val folder -> val/<wnid>/.
The scripts in ``scripts/prepare_*.py`` call these.
"""

import logging
import sys
from typing import Callable

from podexp.errors import PodexpError


def run_script(action: Callable[[], object], describe: Callable[[object], str]) -> int:
    """The body of a ``scripts/prepare_*.py``: run ``action``, print ``describe(result)``; a user error
    becomes one paragraph on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = action()
    except PodexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(describe(result))
    return 0
