"""Each figure writes PNG, PDF and its data as CSV; the data are the numbers given."""

import csv

import numpy as np
import pytest

from podexp.analysis import figures
from podexp.analysis.build import build_figure
from podexp.analysis.items import ITEMS
from podexp.analysis.runs import find_jobs


def _rows(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _assert_files(paths, name):
    assert [p.name for p in paths] == [f"{name}.png", f"{name}.pdf", f"{name}.csv"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("name, peak", [("fig2", 2.0), ("fig3", 2.598)])
def test_derivative_figures(tmp_path, name, peak):
    paths = build_figure(ITEMS[name], [], tmp_path)
    _assert_files(paths, name)
    values = [float(r["derivative"]) for r in _rows(paths[2])]
    assert max(values) == pytest.approx(peak, abs=1e-3)


def test_convergence_figure_from_metrics(tmp_path, fake_job):
    sweep = tmp_path / "s"
    for seed, accs in enumerate([[10, 30], [20, 50]]):
        fake_job(
            sweep,
            {"loss": "pod", "seed": seed},
            accs[-1],
            metrics=[{"epoch": e, "test_acc": a, "train_loss": 1.0 / (e + 1)} for e, a in enumerate(accs)],
        )
    paths = build_figure(ITEMS["fig4"], find_jobs([sweep]), tmp_path / "out")
    _assert_files(paths, "fig4")
    acc = [r for r in _rows(paths[2]) if r["metric"] == "test_acc"]
    assert [(r["loss"], int(r["epoch"]), float(r["mean"])) for r in acc] == [("pod", 1, 15.0), ("pod", 2, 40.0)]


def test_loss_vs_alpha_figure_uses_the_last_training_loss(tmp_path, fake_job):
    sweep = tmp_path / "s"
    for alpha, loss in ((0.01, 0.2), (0.1, 0.5)):
        for seed in (0, 1):
            fake_job(
                sweep,
                {"loss.alpha": alpha, "dataset": "cifar10", "seed": seed},
                90.0,
                metrics=[{"epoch": 0, "train_loss": 9.0}, {"epoch": 1, "train_loss": loss + seed / 10}],
            )
    paths = build_figure(ITEMS["fig5"], find_jobs([sweep]), tmp_path / "out")
    rows = _rows(paths[2])
    assert [(r["dataset"], float(r["alpha"]), float(r["mean_loss"]), int(r["n"])) for r in rows] == [
        ("cifar10", 0.01, pytest.approx(0.25), 2),
        ("cifar10", 0.1, pytest.approx(0.55), 2),
    ]


def test_latent_scatter_needs_two_dimensions(tmp_path):
    z, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 5
    paths = figures.latent_scatter_figure("fig6", {"softmax": (z, y), "pod (α=0.01)": (z, y)}, tmp_path)
    _assert_files(paths, "fig6")
    assert {r["panel"] for r in _rows(paths[2])} == {"softmax", "pod (α=0.01)"}
    with pytest.raises(ValueError, match="2-D"):
        figures.latent_scatter_figure("fig6", {"x": (np.zeros((3, 3)), np.zeros(3))}, tmp_path)


def test_fig6_panels_follow_the_papers_order():
    from podexp.analysis.build import fig6_order

    panels = ["pod (α=0.1)", "cot", "softmax", "pod (α=0.01)", "nac", "center"]
    assert sorted(panels, key=fig6_order) == ["softmax", "center", "cot", "nac", "pod (α=0.01)", "pod (α=0.1)"]


def test_every_item_names_a_registered_measure_or_figure():
    from podexp.analysis.build import FIGURES, MEASURES

    for item in ITEMS.values():
        if item.kind == "figure":
            assert item.name in FIGURES, item.name
        elif item.kind == "table":
            assert item.measure in MEASURES, (item.name, item.measure)
    assert set(FIGURES.available()) == {i.name for i in ITEMS.values() if i.kind == "figure"}
