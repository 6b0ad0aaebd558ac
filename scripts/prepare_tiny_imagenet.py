"""Arrange Tiny ImageNet's val/ into class folders (val/<wnid>/images/), once; safe to run again.

python scripts/prepare_tiny_imagenet.py data/tiny-imagenet-200
"""

import argparse
import sys
from pathlib import Path

from podexp.data.prepare import run_script
from podexp.data.prepare.tiny_imagenet import arrange_val


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="the unzipped tiny-imagenet-200 folder")
    args = parser.parse_args()
    return run_script(
        lambda: arrange_val(args.root),
        lambda n: f"moved {n} val images" if n else "val/ is already arranged: nothing to do",
    )


if __name__ == "__main__":
    sys.exit(main())
