"""Move the flat ILSVRC-2012 val images into val/<wnid>/ folders, once; safe to run again.

    python scripts/prepare_imagenet_val.py data/imagenet/val \
        --ground-truth ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt \
        --synsets ILSVRC2012_devkit_t12/data/meta.mat

--synsets: the devkit's meta.mat, or a text file whose line i starts with the wnid of ILSVRC2012_ID i.
"""

import argparse
import sys
from pathlib import Path

from podexp.data.prepare import run_script
from podexp.data.prepare.imagenet_val import arrange_imagenet_val


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("val_dir", type=Path)
    parser.add_argument("--ground-truth", type=Path, required=True)
    parser.add_argument("--synsets", type=Path, required=True)
    args = parser.parse_args()
    return run_script(
        lambda: arrange_imagenet_val(args.val_dir, args.ground_truth, args.synsets),
        lambda n: f"moved {n} val images" if n else "val/ is already arranged: nothing to do",
    )


if __name__ == "__main__":
    sys.exit(main())
