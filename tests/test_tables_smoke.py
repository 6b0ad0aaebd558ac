"""`make tables-smoke`: every paper table and figure through the whole pipeline on tiny data.

Runs ``scripts/reproduce.py all --smoke`` into a temporary folder (or checks the reports of an earlier
`make tables-smoke` when $PODEXP_SMOKE_REPORTS names them), then asserts every report file exists and
every table carries the paper's row and column labels with a number or "missing" in every cell.
"""
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
CONFIG_VALUE = re.compile(rf"^{NUMBER}$|^missing$")     # Table 3: the config's number


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    given = os.environ.get("PODEXP_SMOKE_REPORTS")
    if given and Path(given).is_dir():
        return Path(given)
    out = tmp_path_factory.mktemp("smoke")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), "all", "--smoke",
                           "--reports", str(out / "reports"), "--sweep-root", str(out / "sweeps")],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
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
        assert [column, f"{column} paper", f"{column} Δ"] == header[header.index(column):header.index(column) + 3]
    assert [str(r) for r in paper["rows"]] == [row[0] for row in rows][:len(paper["rows"])]
    for row in rows:
        for column in paper["columns"]:
            value = row[header.index(column)]
            assert (CONFIG_VALUE if item == "table3" else VALUE).match(value), f"{item} {row[0]}/{column}: {value!r}"


@pytest.mark.slow
@pytest.mark.parametrize("item", FIGURES)
def test_figure_files(reports, item):
    for suffix in ("png", "pdf", "csv"):
        assert (reports / item / f"{item}.{suffix}").stat().st_size > 0
    assert len((reports / item / f"{item}.csv").read_text().splitlines()) > 1   # data, not just a header
