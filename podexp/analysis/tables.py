"""A paper table filled from runs: mean ± std over seeds per cell beside the paper's number, written
as markdown, LaTeX and CSV; ``check`` lists the cells that differ from the paper by more than a tolerance.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources

import yaml

from podexp.analysis.items import Item
from podexp.analysis.runs import Cell


def paper_results() -> dict:
    """The paper's numbers (``podexp/paper_results.yaml``, a copy of the project's transcription)."""
    return yaml.safe_load(resources.files("podexp").joinpath("paper_results.yaml").read_text())


@dataclass
class Table:
    item: Item
    caption: str
    row_header: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], Cell]

    def cell(self, row: str, column: str) -> Cell:
        return self.cells[(row, column)]

    def best(self) -> set[tuple[str, str]]:
        """The (row, column) of the best mean per column or per row, as the item says (all of them on ties)."""
        if self.item.best is None:
            return set()
        lines = (
            [[(r, c) for r in self.rows] for c in self.columns]
            if self.item.best == "column"
            else [[(r, c) for c in self.columns] for r in self.rows]
        )
        chosen = set()
        sign = -1.0 if self.item.lower_is_better else 1.0
        for line in lines:
            scored = [
                (sign * self.cells[key].mean, key)
                for key in line
                if self.cells[key].mean is not None and not math.isnan(self.cells[key].mean)
            ]
            if len(scored) > 1:
                top = max(score for score, _ in scored)
                chosen.update(key for score, key in scored if score == top)
        return chosen


def new_table(item: Item, row_header: str) -> Table:
    """An empty table with the paper's rows, columns and numbers (every cell 'missing' until filled;
    a column the paper has no number for holds ``null`` in paper_results.yaml)."""
    spec = paper_results()[item.name]
    rows = [str(r) for r in spec["rows"]]
    columns = [str(c) for c in spec["columns"]]
    cells = {
        (row, col): Cell(paper=None if value is None else float(value))
        for row, values in zip(rows, spec["rows"].values())
        for col, value in zip(columns, values)
    }
    return Table(item, spec["caption"], row_header, rows, columns, cells)


def add_value(table: Table, row: str, column: str, value: float | None, job: str = "") -> None:
    """Record the value of the run in folder ``job`` (None: it failed or is unfinished); unknown
    rows/columns are added."""
    if row not in table.rows:
        table.rows.append(row)
    if column not in table.columns:
        table.columns.append(column)
    for r in table.rows:
        for c in table.columns:
            table.cells.setdefault((r, c), Cell())
    table.cells[(row, column)].add(value, job)


# -- rendering ----------------------------------------------------------------------------------


def _number(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def cell_text(cell: Cell, fmt: str, plain: bool = False) -> str:
    """ "mean ± std (n=N)", just the number when ``plain`` (config tables), or "missing"."""
    if cell.mean is None:
        return "missing"
    if plain:
        return format(cell.mean, fmt)
    return f"{format(cell.mean, fmt)} ± {format(cell.std, fmt)} (n={cell.n})"


def header(table: Table) -> list[str]:
    names = [table.row_header]
    for column in table.columns:
        names += [column, f"{column} paper", f"{column} Δ"]
    return names


def body(table: Table, bold=lambda text: f"**{text}**") -> list[list[str]]:
    fmt, best = table.item.number_format, table.best()
    lines = []
    for row in table.rows:
        line = [row]
        for column in table.columns:
            cell = table.cells[(row, column)]
            text = cell_text(cell, fmt, plain=table.item.kind == "config_table")
            diff = cell.diff
            line += [
                bold(text) if (row, column) in best else text,
                _number(cell.paper, fmt) or "—",
                "—" if diff is None else format(diff, "+" + fmt),
            ]
        lines.append(line)
    return lines


def markdown(table: Table) -> str:
    names = header(table)
    source = (
        "values of configs/dataset/<name>.yaml"
        if table.item.kind == "config_table"
        else "mean ± std over seeds, n runs"
    )
    out = [
        f"**{table.item.name}**: {table.caption} ({source}; paper value and difference beside each)",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "---|" * len(names),
    ]
    out += ["| " + " | ".join(line) + " |" for line in body(table)]
    return "\n".join(out) + "\n"


def _latex_escape(text: str) -> str:
    for raw, escaped in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
        ("±", r"$\pm$"),
        ("Δ", r"$\Delta$"),
    ):
        text = text.replace(raw, escaped)
    return text


def latex(table: Table) -> str:
    names = header(table)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_latex_escape(table.caption)} (mean $\pm$ std over seeds)}}",
        r"\begin{tabular}{l" + "r" * (len(names) - 1) + "}",
        r"\hline",
        " & ".join(_latex_escape(n) for n in names) + r" \\",
        r"\hline",
    ]
    for line in body(table, bold=lambda text: "\x00" + text + "\x01"):
        escaped = (_latex_escape(t).replace("\x00", r"\textbf{").replace("\x01", "}") for t in line)
        lines.append(" & ".join(escaped) + r" \\")
    lines += [r"\hline", r"\end{tabular}", rf"\label{{tab:{table.item.name}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


NUMERIC_COLUMNS = ("mean", "std", "n", "failed", "paper", "diff")


def numeric_rows(table: Table) -> tuple[list[str], list[list]]:
    """(columns, rows) of the table in long form, one row per cell: its row and column labels, then
    mean, std, n, failed, paper and diff as numbers (None where missing), for tools that sort and plot
    (W&B)."""
    columns = [table.row_header, "column", *NUMERIC_COLUMNS]
    rows = []
    for row in table.rows:
        for column in table.columns:
            cell = table.cells[(row, column)]
            rows.append([row, column, cell.mean, cell.std, cell.n, len(cell.failed), cell.paper, cell.diff])
    return columns, rows


def csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([table.row_header, "column", "mean", "std", "n", "failed", "paper", "diff", "values"])
    for row in table.rows:
        for column in table.columns:
            cell = table.cells[(row, column)]
            writer.writerow(
                [
                    row,
                    column,
                    _number(cell.mean, ".6g"),
                    _number(cell.std, ".6g"),
                    cell.n,
                    len(cell.failed),
                    _number(cell.paper, ".6g"),
                    _number(cell.diff, ".6g"),
                    ";".join(format(v, ".6g") for v in cell.values),
                ]
            )
    return buffer.getvalue()


def check(table: Table, tolerance: float) -> list[str]:
    """One line per cell with a paper value that is missing or differs from it by more than ``tolerance``."""
    problems = []
    for (row, column), cell in table.cells.items():
        if cell.paper is None:
            continue
        if cell.mean is None:
            problems.append(f"{table.item.name} {row}/{column}: missing (paper {cell.paper:g})")
        elif abs(cell.diff) > tolerance:
            problems.append(
                f"{table.item.name} {row}/{column}: {cell.mean:.2f} vs paper "
                f"{cell.paper:g} (difference {cell.diff:+.2f} > {tolerance:g})"
            )
    return problems
