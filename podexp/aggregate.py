"""Summarise a sweep: mean +- std (and n) of the final test accuracy per configuration.

    python -m podexp.aggregate outputs/multirun/demo/2026-01-01_12-00-00

A job is a folder holding ``config.yaml``; its configuration is its Hydra overrides without ``seed``.
Jobs without ``result.json`` are counted as failed (or unfinished), never silently dropped.
Writes ``summary.md`` and ``summary.csv`` into the sweep folder and prints the markdown table.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from podexp.train.checkpoint import atomic_write_text

EXCLUDED_KEYS = {"seed", "trainer.progress", "hydra/launcher"}


@dataclass
class Cell:
    config: str
    accuracies: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.accuracies)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.accuracies) if self.accuracies else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.accuracies) if self.n > 1 else (0.0 if self.n == 1 else None)


def job_key(job: Path) -> str:
    """The configuration a job belongs to: its command-line overrides minus the seed."""
    overrides_file = job / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    kept = [o for o in overrides or [] if o.split("=", 1)[0].lstrip("+~") not in EXCLUDED_KEYS]
    return ",".join(sorted(kept)) or "(defaults)"


def collect(sweep: Path) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for config in sorted(sweep.rglob("config.yaml")):
        job = config.parent
        if job.name == ".hydra":
            continue
        cell = cells.setdefault(job_key(job), Cell(job_key(job)))
        result = job / "result.json"
        if result.exists():
            cell.accuracies.append(float(json.loads(result.read_text())["final_test_acc"]))
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a multirun folder (outputs/multirun/<name>/<time>)")
    args = parser.parse_args(argv)
    if not args.sweep.is_dir():
        print(f"error: {args.sweep} is not a folder. Pass the sweep folder that Hydra printed, "
              f"e.g. outputs/multirun/demo/<date_time>.", file=sys.stderr)
        return 2
    cells = collect(args.sweep)
    if not cells:
        print(f"error: no runs (folders with config.yaml) under {args.sweep}.", file=sys.stderr)
        return 2
    table = markdown(cells)
    atomic_write_text(table, args.sweep / "summary.md")
    write_csv(cells, args.sweep / "summary.csv")
    print(table, end="")
    print(f"\n(written to {args.sweep / 'summary.md'} and summary.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
