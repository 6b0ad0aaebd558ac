"""Arrange Tiny ImageNet's val/ into class folders (val/<wnid>/images/), once; safe to run again.

    python scripts/prepare_tiny_imagenet.py data/tiny-imagenet-200
"""
import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podexp.data.prepare.tiny_imagenet import arrange_val  # noqa: E402
from podexp.errors import PodexpError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="the unzipped tiny-imagenet-200 folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        moved = arrange_val(args.root)
    except PodexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"moved {moved} val images" if moved else "val/ is already arranged: nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
