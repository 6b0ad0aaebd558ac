"""Build the FaceScrub-100 64x64 train/test tree from per-identity image folders (rule: docs/datasets.md).

    python scripts/prepare_facescrub.py SRC DST [--num-identities 100] [--test-fraction 0.15] [--size 64]

SRC holds one folder of face images per identity; DST receives train/<id>/, test/<id>/ and manifest.json.
Running it again changes nothing unless SRC or the options changed.
"""

import argparse
import sys
from pathlib import Path

from podexp.data.prepare import run_script
from podexp.data.prepare.facescrub import prepare_facescrub


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--num-identities", type=int, default=100)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    return run_script(
        lambda: prepare_facescrub(args.src, args.dst, args.num_identities, args.test_fraction, args.size),
        lambda summary: ", ".join(f"{k} {v}" for k, v in summary.items()),
    )


if __name__ == "__main__":
    sys.exit(main())
