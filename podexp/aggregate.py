"""Summarise a sweep, or build one of the paper's tables / figures from its sweeps.

    python -m podexp.aggregate outputs/multirun/demo/2026-01-01_12-00-00 [--metric test_acc_at_best_val]
    python -m podexp.aggregate --item table4 outputs/multirun/table4/<time> [--reports reports] [--check 1.0]

Without ``--item``: mean +- std (and n) of the final test accuracy (``--metric``: another accuracy of
result.json, e.g. best_val_acc or test_acc_at_best_val) per configuration (its overrides
without the seed and the keys that do not change a result), failed or unfinished jobs counted, into
``summary.md`` and ``summary.csv`` in the sweep folder (``podexp.analysis.sweeps``).

With ``--item``: the paper's table as markdown, LaTeX and CSV, or the figure as PNG, PDF and CSV, under
``<reports>/<item>/`` (``podexp.analysis.report``). ``--check TOL`` exits 1 when a cell is missing or
differs from the paper by more than TOL points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from podexp.analysis.items import ITEMS
from podexp.analysis.sweeps import DEFAULT_METRIC, write_summary
from podexp.errors import PodexpError
from podexp.settings import RESULT_METRICS


def main(argv=None) -> int:
    from podexp.analysis.build import add_options, options_from  # Table 9's options; loads torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", type=Path, nargs="*", help="sweep folder(s) (outputs/multirun/<name>/<time>)")
    parser.add_argument("--item", choices=sorted(ITEMS), help="build this paper table / figure")
    parser.add_argument(
        "--reports",
        type=Path,
        default=Path("reports"),
        help="with --item: outputs go to REPORTS/<item>/ (default reports)",
    )
    parser.add_argument(
        "--check",
        type=float,
        metavar="TOL",
        help="with --item: exit 1 if a cell is missing or off the paper by > TOL points",
    )
    parser.add_argument(
        "--metric",
        choices=RESULT_METRICS,
        default=DEFAULT_METRIC,
        help=f"without --item: the result.json accuracy to tabulate (default {DEFAULT_METRIC})",
    )
    add_options(parser)
    args = parser.parse_args(argv)
    if args.item is None and len(args.sweeps) != 1:
        parser.error("pass exactly one sweep folder, or --item ITEM with its sweep folders")
    try:
        if args.item is not None:
            from podexp.analysis.report import build_item

            return build_item(args.item, args.sweeps, args.reports, args.check, options_from(args))
        print(write_summary(args.sweeps[0], args.metric), end="")
        print(f"\n(written to {args.sweeps[0] / 'summary.md'} and summary.csv)")
        return 0
    except PodexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
