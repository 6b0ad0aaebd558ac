"""One specification per paper table and figure (docs/method.md §6): which experiment configs launch its
runs, how a run maps to a cell, and what is measured on it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    name: str
    kind: str  # table | config_table | figure
    experiments: tuple[str, ...] = ()  # configs/experiment/<name>.yaml files launched by `make <item>`
    rows: tuple[str, ...] = ()  # label keys whose values, joined by "/", name a row
    column: str | None = None  # label key naming the column; None: the measure names them
    measure: str = "accuracy"  # a name in analysis.build.MEASURES (figures: FIGURES[name])
    where: dict = field(default_factory=dict)  # label key -> required value
    best: str | None = "column"  # bold the best value per "column" | "row" | None
    lower_is_better: bool = False
    checkable: bool = True  # whether --check compares it (its unit is accuracy points)
    number_format: str = ".2f"


ITEMS: dict[str, Item] = {
    item.name: item
    for item in [
        Item(
            "table1",
            "table",
            ("table1",),
            rows=("dataset",),
            measure="norm_split",
            where={"loss": "cosine"},
            best="row",
        ),
        Item("table2", "table", ("table2",), rows=("dataset.latent_dim",), measure="accuracy", where={"loss": "pod"}),
        Item("table3", "config_table", best=None, number_format=".0f"),
        Item("table4", "table", ("table4",), rows=("loss",), column="dataset"),
        Item(
            "table5",
            "table",
            ("table5",),
            rows=("loss",),
            measure="eigen_variance",
            lower_is_better=True,
            checkable=False,
            number_format=".3g",
        ),
        Item("table6", "table", ("table6", "table6_imagenet"), rows=("dataset",), column="loss", best="row"),
        Item("table7", "table", ("table7",), rows=("backbone", "dataset"), column="loss", best="row"),
        Item("table8", "table", ("table8_vit", "table8_swin"), rows=("backbone", "dataset"), column="loss", best="row"),
        Item(
            "table9",
            "table",
            ("table9",),
            rows=("dataset",),
            measure="cosine_vs_gda",
            where={"loss": "pod"},
            best="row",
        ),
        Item("fig2", "figure", best=None),
        Item("fig3", "figure", best=None),
        Item("fig4", "figure", ("fig4",), rows=("loss",), best=None),
        Item("fig5", "figure", ("fig5",), rows=("dataset", "loss.alpha"), where={"loss": "pod"}, best=None),
        Item("fig6", "figure", ("fig6", "fig6_alpha"), rows=("loss",), best=None),
    ]
}

# Config-group keys whose values name a config file; the driver skips values whose file is missing.
GROUP_KEYS = ("dataset", "loss", "backbone")


def get_item(name: str) -> Item:
    from podexp.errors import unknown_name

    if name not in ITEMS:
        raise unknown_name("item", name, ITEMS)
    return ITEMS[name]
