"""Summarise a sweep, or build one of the paper's tables / figures from its sweeps.

    python -m podexp.aggregate outputs/multirun/demo/2026-01-01_12-00-00
    python -m podexp.aggregate --item table4 outputs/multirun/table4/<time> [--reports reports] [--check 1.0]

Without ``--item``: mean +- std (and n) of the final test accuracy per configuration. A job is a folder
holding ``config.yaml`` (or ``failed.json``); its configuration is its Hydra overrides without ``seed``. Jobs without
``result.json`` are counted as failed (or unfinished), never silently dropped. Writes ``summary.md`` and
``summary.csv`` into the sweep folder and prints the markdown table.

With ``--item``: the paper's table (rows and columns as in ``podexp/paper_results.yaml``, mean ± std over
seeds, the paper's value and the difference, best value in bold; cells without runs read "missing") as
markdown, LaTeX and CSV, or the figure as PNG, PDF and CSV, under ``<reports>/<item>/``. ``--check TOL``
exits 1 when a cell is missing or differs from the paper by more than TOL points.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from podexp.analysis.tables import SeedStats
from podexp.train.checkpoint import atomic_write_text

EXCLUDED_KEYS = {"seed", "trainer.progress", "hydra/launcher"}


@dataclass
class Cell(SeedStats):
    """One configuration of a sweep: its final test accuracies and the names of its failed jobs."""
    config: str
    values: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def job_key(job: Path) -> str:
    """The configuration a job belongs to: its command-line overrides minus the seed."""
    overrides_file = job / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    kept = [o for o in overrides or [] if o.split("=", 1)[0].lstrip("+~") not in EXCLUDED_KEYS]
    return ",".join(sorted(kept)) or "(defaults)"


def collect(sweep: Path) -> list[Cell]:
    cells: dict[str, Cell] = {}
    # a job is a folder with config.yaml, or with failed.json (a config rejected before it was written)
    jobs = {p.parent for name in ("config.yaml", "failed.json") for p in sweep.rglob(name)}
    for job in sorted(j for j in jobs if j.name != ".hydra"):
        cell = cells.setdefault(job_key(job), Cell(job_key(job)))
        result = job / "result.json"
        if result.exists():
            cell.values.append(float(json.loads(result.read_text())["final_test_acc"]))
        else:
            cell.failed.append(job.name)
    return list(cells.values())


def _fmt(cell: Cell) -> str:
    return "missing" if cell.mean is None else f"{cell.mean:.2f} ± {cell.std:.2f}"


def markdown(cells: list[Cell]) -> str:
    lines = ["| configuration | final test acc (%) | n | failed |", "|---|---|---|---|"]
    lines += [f"| {c.config} | {_fmt(c)} | {c.n} | {len(c.failed)} |" for c in cells]
    return "\n".join(lines) + "\n"


def write_csv(cells: list[Cell], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["configuration", "mean", "std", "n", "failed"])
        for c in cells:
            writer.writerow([c.config, "" if c.mean is None else f"{c.mean:.4f}",
                             "" if c.std is None else f"{c.std:.4f}", c.n, len(c.failed)])


def summarise(sweep: Path) -> int:
    if not sweep.is_dir():
        print(f"error: {sweep} is not a folder. Pass the sweep folder that Hydra printed, "
              f"e.g. outputs/multirun/demo/<date_time>.", file=sys.stderr)
        return 2
    cells = collect(sweep)
    if not cells:
        print(f"error: no runs (folders with config.yaml) under {sweep}.", file=sys.stderr)
        return 2
    table = markdown(cells)
    atomic_write_text(table, sweep / "summary.md")
    write_csv(cells, sweep / "summary.csv")
    print(table, end="")
    print(f"\n(written to {sweep / 'summary.md'} and summary.csv)")
    return 0


def build_item(name: str, sweeps: list[Path], reports: Path, check: float | None = None,
               options=None) -> int:
    """Build ``name``'s table or figure from ``sweeps`` into ``reports/<name>/``; the exit status."""
    from podexp.analysis import build, report, tables
    from podexp.analysis.items import get_item
    from podexp.analysis.runs import find_jobs

    item = get_item(name)
    missing = [s for s in sweeps if not s.is_dir()]
    if missing:
        print(f"error: {', '.join(map(str, missing))} is not a folder. Pass the sweep folder(s) of "
              f"{name} (outputs/multirun/{name}/<date_time>).", file=sys.stderr)
        return 2
    jobs = find_jobs(sweeps)
    out_dir = reports / name
    options = options or build.Options()
    table, images = None, []
    if item.kind == "figure":
        images = [p for p in build.build_figure(item, jobs, out_dir) if p.suffix == ".png"]
        print(f"{name}: {len(jobs)} job(s); figure written to {out_dir}")
    else:
        table = (build.build_config_table(item) if item.kind == "config_table"
                 else build.build_table(item, jobs, options))
        report.write_table(table, out_dir)
        print(tables.markdown(table), end="")
        print(f"\n(written to {out_dir}/{name}.md, .tex and .csv)")
    settings = report.wandb_settings(jobs)
    if settings is not None:
        report.log_to_wandb(name, settings, table, images, out_dir)
    if check is not None and table is not None and item.checkable:
        problems = tables.check(table, check)
        for line in problems:
            print(f"check: {line}", file=sys.stderr)
        return 1 if problems else 0
    return 0


def main(argv=None) -> int:
    from podexp.analysis.build import add_options, options_from
    from podexp.analysis.items import ITEMS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", type=Path, nargs="*",
                        help="sweep folder(s) (outputs/multirun/<name>/<time>)")
    parser.add_argument("--item", choices=sorted(ITEMS), help="build this paper table / figure")
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="with --item: outputs go to REPORTS/<item>/ (default reports)")
    parser.add_argument("--check", type=float, metavar="TOL",
                        help="with --item: exit 1 if a cell is missing or off the paper by > TOL points")
    add_options(parser)
    args = parser.parse_args(argv)
    if args.item is None:
        if len(args.sweeps) != 1:
            parser.error("pass exactly one sweep folder, or --item ITEM with its sweep folders")
        return summarise(args.sweeps[0])
    return build_item(args.item, args.sweeps, args.reports, args.check, options_from(args))


if __name__ == "__main__":
    sys.exit(main())
