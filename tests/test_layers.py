"""Layers point one way: every ``podexp`` module imports only from its own layer or the layers below it
(imports inside functions count too), and the README's "Layout" section lists the same layers."""

from __future__ import annotations

import ast
import re

from helpers import ROOT

# Bottom first. ``shared``: whether the modules of a layer may import each other (the CLIs, and
# train / analysis, stand side by side and never do). train.py and scripts/ sit above everything.
LAYERS = [
    (
        "base",
        True,
        ("podexp", "podexp.errors", "podexp.io", "podexp.registry", "podexp.defaults", "podexp.keys", "podexp.fields"),
    ),
    (
        "parts",
        True,
        ("podexp.pedcc", "podexp.data", "podexp.models", "podexp.losses", "podexp.optim", "podexp.settings"),
    ),
    ("composition root", True, ("podexp.compose", "podexp.validate")),
    ("training and analysis", False, ("podexp.train", "podexp.analysis")),
    ("CLIs", False, ("podexp.aggregate", "podexp.reproduce", "podexp.evaluate")),
]

# Imports that still point the wrong way, each removed by a change in progress elsewhere; the test
# fails when one of them is gone, so the entry is deleted with it.
PENDING: dict[tuple[str, str], str] = {}


def place(module: str) -> tuple[int, str] | None:
    """(layer index, the prefix that places it) by the longest prefix; the bare package is ``podexp``."""
    best = None
    for index, (_, _, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "podexp" and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    return best


def imported_modules(module: str, source: str, is_package: bool = False) -> set[str]:
    """Every podexp module ``source`` imports, anywhere in it (``from a import b`` names ``a.b`` when
    that is a module the layer table knows, else ``a``)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                known = place(full) is not None and place(full) != place(base)
                found.add(full if known else base)
    return {name for name in found if name == "podexp" or name.startswith("podexp.")}


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """``importer -> imported (why)`` for each import of ``source`` that breaks the layer rules."""
    here = place(module)
    if here is None:
        return [f"{module}: not in the layer table of tests/test_layers.py; add it to a layer"]
    problems = []
    for target in sorted(imported_modules(module, source, is_package)):
        there = place(target)
        if there is None:
            problems.append(f"{module} -> {target} (a module the layer table does not know)")
        elif there[0] > here[0]:
            problems.append(f"{module} -> {target} (upward: {LAYERS[here[0]][0]} imports {LAYERS[there[0]][0]})")
        elif there[0] == here[0] and there[1] != here[1] and not LAYERS[here[0]][1]:
            problems.append(f"{module} -> {target} ({here[1]} and {there[1]} stand side by side)")
    return problems


def project_modules():
    for path in sorted((ROOT / "podexp").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        yield ".".join(parts[:-1] if is_package else parts), path.read_text(), is_package


def test_every_import_points_down():
    found = {}
    for module, source, is_package in project_modules():
        for problem in violations(module, source, is_package):
            importer, _, rest = problem.partition(" -> ")
            found[(importer, rest.split(" ", 1)[0])] = problem
    new = [problem for key, problem in found.items() if key not in PENDING]
    assert not new, "imports against the layers:\n" + "\n".join(new)
    gone = [f"{a} -> {b}" for a, b in PENDING if (a, b) not in found]
    assert not gone, "fixed, so delete from PENDING: " + ", ".join(gone)


def test_the_checker_catches_planted_violations():
    lazy_upward = "def f():\n    from podexp.train.loop import Trainer\n"
    assert violations("podexp.losses.new", lazy_upward) == [
        "podexp.losses.new -> podexp.train.loop (upward: parts imports training and analysis)"
    ]
    assert violations("podexp.io", "import podexp.data") != []
    assert violations("podexp.analysis.x", "from podexp.train import run") != []  # side by side
    assert violations("podexp.aggregate", "from podexp import reproduce") != []  # side by side
    assert violations("podexp.analysis.x", "from ..train import run") != []  # relative
    assert violations("podexp.newthing", "") != []  # unplaced
    assert violations("podexp.train.x", "from podexp.data import build_loaders\nfrom . import resume") == []
    assert violations("podexp.reproduce", "from podexp.analysis.report import build_item") == []


def exists(module: str) -> bool:
    path = ROOT / module.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").exists()


def test_readme_layout_lists_the_same_layers_top_down():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    assert len(section.strip().splitlines()) <= 15
    lines = section.splitlines()
    rows = []
    for name, _, prefixes in LAYERS:
        listed = set()
        for prefix in (p for p in prefixes if p != "podexp" and exists(p)):
            mentions = {i for i, line in enumerate(lines) if re.search(rf"(?<![\w.]){re.escape(prefix)}\b", line)}
            assert mentions, f"README's Layout does not name {prefix}"
            listed |= mentions
        assert len(listed) == 1, f"the {name} layer's modules should share one line of README's Layout"
        rows.append(listed.pop())
    assert rows == sorted(rows, reverse=True), "README's Layout lists the layers top (CLIs) to bottom (base)"
