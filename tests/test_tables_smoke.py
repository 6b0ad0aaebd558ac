"""`make tables-smoke`: every paper table and figure through the whole pipeline on tiny data.

Runs ``scripts/reproduce.py all --smoke`` into a temporary folder (or checks the reports of an earlier
`make tables-smoke` when $PODEXP_SMOKE_REPORTS names them), then asserts every report file exists, every
table carries the paper's row and column labels with a number or "missing" in every cell, and every number
equals the golden file tests/golden/tables_smoke.json (the smoke runs are deterministic on the CPU).
After an intended change of a number: ``make golden`` (= PODEXP_UPDATE_GOLDEN=1 on this file) rewrites it.
"""

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TABLES = [f"table{i}" for i in range(1, 10)]
FIGURES = ["fig2", "fig3", "fig4", "fig5", "fig6"]
NUMBER = r"-?\d+(\.\d+)?(e[-+]\d+)?"
VALUE = re.compile(rf"^(\*\*)?{NUMBER} ± {NUMBER} \(n=\d+\)(\*\*)?$|^missing$")
CONFIG_VALUE = re.compile(rf"^{NUMBER}$|^missing$")  # Table 3: the config's number
GOLDEN = Path(__file__).resolve().parent / "golden" / "tables_smoke.json"
# The CSVs hold 6 significant digits; 1e-3 relative covers that rounding and float differences between
# torch builds and thread counts, while any real change (one test image more or less right is 2 points
# on the smoke's 50-image test sets) is far outside it. Fig. 6 plots raw trained 2-d features, which
# amplify float differences (AM-Softmax's moved 0.16 % between 1 and 2 CPU threads): 2e-2 there.
REL_TOL, ABS_TOL = 1e-3, 1e-12
ITEM_REL_TOL = {"fig6": 2e-2}
FULL_ROWS = 40  # a figure CSV up to this many rows is kept whole, a longer one summarised
REGENERATE = (
    "If the change is intended, rewrite the golden file with `make golden` "
    "(PODEXP_UPDATE_GOLDEN=1 python -m pytest tests/test_tables_smoke.py) and commit it."
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    given = os.environ.get("PODEXP_SMOKE_REPORTS")
    if given and Path(given).is_dir():
        return Path(given)
    out = tmp_path_factory.mktemp("smoke")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "reproduce.py"),
            "all",
            "--smoke",
            "--reports",
            str(out / "reports"),
            "--sweep-root",
            str(out / "sweeps"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "reports"


def _markdown_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return split[0], split[2:]


@pytest.mark.slow
@pytest.mark.parametrize("item", TABLES)
def test_table_files_labels_and_cells(reports, item):
    for suffix in ("md", "tex", "csv"):
        assert (reports / item / f"{item}.{suffix}").stat().st_size > 0
    paper = yaml.safe_load((ROOT / "podexp" / "paper_results.yaml").read_text())[item]
    header, rows = _markdown_rows(reports / item / f"{item}.md")
    for column in paper["columns"]:
        assert [column, f"{column} paper", f"{column} Δ"] == header[header.index(column) : header.index(column) + 3]
    assert [str(r) for r in paper["rows"]] == [row[0] for row in rows][: len(paper["rows"])]
    for row in rows:
        for column in paper["columns"]:
            value = row[header.index(column)]
            assert (CONFIG_VALUE if item == "table3" else VALUE).match(value), f"{item} {row[0]}/{column}: {value!r}"


@pytest.mark.slow
@pytest.mark.parametrize("item", FIGURES)
def test_figure_files(reports, item):
    for suffix in ("png", "pdf", "csv"):
        assert (reports / item / f"{item}.{suffix}").stat().st_size > 0
    assert len((reports / item / f"{item}.csv").read_text().splitlines()) > 1  # data, not just a header


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _table_numbers(path: Path) -> dict[str, dict]:
    """{"<row> | <column>": {"mean": ..., "n": ...}} of every cell of a table's CSV."""
    with path.open() as handle:
        return {f"{r[0]} | {r[1]}": {"mean": _number(r[2]), "n": int(r[4])} for r in list(csv.reader(handle))[1:]}


def _figure_numbers(path: Path) -> dict:
    """A figure's CSV: every row when it is short; else count, mean, std, min and max of each numeric
    column, per value of the first column when that one is a label (Fig. 6's panels)."""
    with path.open() as handle:
        header, *rows = list(csv.reader(handle))
    if len(rows) <= FULL_ROWS:
        return {"rows": [[_number(v) if _number(v) is not None else v for v in row] for row in rows]}
    grouped = _number(rows[0][0]) is None
    groups: dict[str, list[list[str]]] = {}
    for row in rows:
        groups.setdefault(row[0] if grouped else "all", []).append(row)
    summary = {}
    for group, members in groups.items():
        for index, name in enumerate(header):
            values = [_number(row[index]) for row in members]
            if (grouped and index == 0) or any(v is None for v in values):
                continue
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
            summary[f"{group} | {name}"] = [len(values), mean, std, min(values), max(values)]
    return {"summary": summary}


def report_numbers(reports: Path) -> dict[str, dict]:
    """Every number the smoke reports hold, item by item (what the golden file stores)."""
    return {
        **{item: _table_numbers(reports / item / f"{item}.csv") for item in TABLES},
        **{item: _figure_numbers(reports / item / f"{item}.csv") for item in FIGURES},
    }


def differences(expected, actual, where: str = "", rel_tol: float = REL_TOL) -> list[str]:
    """One line per number (or key) that differs beyond the tolerance."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = [f"{where}/{key}: missing now" for key in expected.keys() - actual.keys()]
        lines += [f"{where}/{key}: new (not in the golden file)" for key in actual.keys() - expected.keys()]
        for key in sorted(expected.keys() & actual.keys()):
            lines += differences(expected[key], actual[key], f"{where}/{key}", ITEM_REL_TOL.get(key, rel_tol))
        return lines
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(actual)} entries, golden {len(expected)}"]
        return [
            line
            for i, (e, a) in enumerate(zip(expected, actual))
            for line in differences(e, a, f"{where}[{i}]", rel_tol)
        ]
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=ABS_TOL):
            return []
    elif expected == actual:
        return []
    return [f"{where}: {actual!r}, golden {expected!r}"]


@pytest.mark.slow
def test_every_number_matches_the_golden_file(reports):
    numbers = report_numbers(reports)
    if os.environ.get("PODEXP_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        text = json.dumps(numbers, indent=1, sort_keys=True)
        text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m[1]) + "]", text)
        GOLDEN.write_text(text + "\n")  # (one line per list of numbers)
    assert GOLDEN.is_file(), f"{GOLDEN} does not exist. {REGENERATE}"
    found = differences(json.loads(GOLDEN.read_text()), numbers)
    assert not found, (
        f"{len(found)} smoke-report number(s) differ from {GOLDEN.name} (relative tolerance "
        f"{REL_TOL:g}, per item {ITEM_REL_TOL}):\n" + "\n".join(found[:40]) + f"\n{REGENERATE}"
    )


def test_golden_comparison_tolerates_rounding_and_catches_changes():
    fig6 = {"summary": {"pod | z1": [720, 0.5, 1.0]}}
    assert differences({"fig6": fig6}, {"fig6": {"summary": {"pod | z1": [720, 0.505, 1.0]}}}) == []
    assert differences({"fig6": fig6}, {"fig6": {"summary": {"pod | z1": [720, 0.6, 1.0]}}}) != []
    golden = {"table4": {"pod | cifar10": {"mean": 12.0, "n": 1}}, "fig5": {"rows": [["cifar10", 0.01, 0.98]]}}
    assert (
        differences(
            golden,
            {
                "table4": {"pod | cifar10": {"mean": 12.000004, "n": 1}},
                "fig5": {"rows": [["cifar10", 0.01, 0.9800003]]},
            },
        )
        == []
    )
    changed = {
        "table4": {"pod | cifar10": {"mean": 14.0, "n": 1}, "pod | cifar100": {"mean": 0.0, "n": 1}},
        "fig5": {"rows": [["cifar10", 0.01, 0.97]]},
    }
    assert differences(golden, changed) == [
        "/fig5/rows[0][2]: 0.97, golden 0.98",
        "/table4/pod | cifar100: new (not in the golden file)",
        "/table4/pod | cifar10/mean: 14.0, golden 12.0",
    ]
