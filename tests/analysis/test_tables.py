"""Tables from fake sweeps: cells, missing runs, bold best, paper values, check, the three formats."""

import csv
import io
import statistics

import pytest

from podexp.aggregate import main
from podexp.analysis import tables
from podexp.analysis.build import build_config_table, build_table
from podexp.analysis.items import ITEMS
from podexp.analysis.report import build_item
from podexp.analysis.runs import find_jobs


@pytest.fixture
def table4_sweep(tmp_path, fake_job):
    sweep = tmp_path / "sweep"
    for seed, acc in enumerate([93.0, 94.0, 95.5]):
        fake_job(sweep, {"loss": "pod", "dataset": "cifar10", "seed": seed}, acc)
    fake_job(sweep, {"loss": "softmax", "dataset": "cifar10", "seed": 0}, 93.25)
    fake_job(sweep, {"loss": "softmax", "dataset": "cifar10", "seed": 1}, None)  # unfinished
    fake_job(sweep, {"loss": "softmax", "dataset": "cifar100", "seed": 0}, None)  # failed only
    return sweep


def test_cells_hold_mean_std_n_and_the_paper_value(table4_sweep):
    table = build_table(ITEMS["table4"], find_jobs([table4_sweep]))
    pod = table.cell("pod", "cifar10")
    assert pod.values == [93.0, 94.0, 95.5]
    assert pod.mean == pytest.approx(statistics.fmean([93.0, 94.0, 95.5]))
    assert pod.std == pytest.approx(statistics.stdev([93.0, 94.0, 95.5]))
    assert pod.paper == 94.31 and pod.diff == pytest.approx(pod.mean - 94.31)
    softmax = table.cell("softmax", "cifar10")
    assert (softmax.n, softmax.failed, softmax.std) == (1, ["loss=softmax,dataset=cifar10,seed=1"], 0.0)
    assert table.cell("softmax", "cifar100").mean is None
    assert table.cell("softmax", "cifar100").failed == ["loss=softmax,dataset=cifar100,seed=0"]
    # every paper row and column is there, in the paper's order, even without runs
    assert table.rows[:3] == ["softmax", "center", "am_softmax"] and len(table.rows) == 10
    assert table.columns == ["cifar10", "cifar100", "tiny_imagenet", "facescrub"]


def test_markdown_marks_missing_bold_best_and_difference(table4_sweep):
    text = tables.markdown(build_table(ITEMS["table4"], find_jobs([table4_sweep])))
    pod_line = next(line for line in text.splitlines() if line.startswith("| pod |"))
    assert "**94.17 ± 1.26 (n=3)**" in pod_line and "| 94.31 | -0.14 |" in pod_line
    nac_line = next(line for line in text.splitlines() if line.startswith("| nac |"))
    assert nac_line.count("missing") == 4
    softmax_line = next(line for line in text.splitlines() if line.startswith("| softmax |"))
    assert "| 93.25 ± 0.00 (n=1) | 93.25 | +0.00 |" in softmax_line  # not the best: no bold


def test_lower_is_better_items_bold_the_smallest():
    table = tables.new_table(ITEMS["table5"], "loss")
    tables.add_value(table, "nac", "sc_matrix", 2e-8)
    tables.add_value(table, "pod", "sc_matrix", 1e-8)
    assert table.best() == {("pod", "sc_matrix")}
    assert "**1e-08 ± 0 (n=1)**" in tables.markdown(table)


def test_table5_carries_the_papers_number_in_the_sc_column_only():
    table = tables.new_table(ITEMS["table5"], "loss")
    assert table.columns == ["feature_cov", "sc_matrix"]
    assert [table.cell(row, "sc_matrix").paper for row in ("nac", "pod")] == [1.82e-8, 1.53e-8]
    assert table.cell("pod", "feature_cov").paper is None
    pod_line = next(line for line in tables.markdown(table).splitlines() if line.startswith("| pod |"))
    assert "| missing | — | — | missing | 1.53e-08 | — |" in pod_line


def test_csv_and_latex(table4_sweep):
    table = build_table(ITEMS["table4"], find_jobs([table4_sweep]))
    rows = list(csv.DictReader(io.StringIO(tables.csv_text(table))))
    assert len(rows) == 40
    pod = next(r for r in rows if r["loss"] == "pod" and r["column"] == "cifar10")
    assert (float(pod["mean"]), int(pod["n"]), float(pod["paper"])) == (pytest.approx(94.1667, 1e-4), 3, 94.31)
    assert pod["values"] == "93;94;95.5"
    tex = tables.latex(table)
    assert r"\textbf{94.17 $\pm$ 1.26 (n=3)}" in tex and r"pedcc\_loss" in tex and "missing" in tex


def test_check_flags_missing_and_far_cells(table4_sweep):
    table = build_table(ITEMS["table4"], find_jobs([table4_sweep]))
    problems = tables.check(table, tolerance=0.1)
    assert any("pod cifar10" in p.replace("/", " ") and "-0.14" in p for p in problems)
    assert not any(p.startswith("table4 softmax/cifar10:") for p in problems)  # 93.25 == paper
    assert sum("missing" in p for p in problems) == 40 - 2


def test_build_item_writes_reports_and_check_status(table4_sweep, tmp_path, capsys):
    reports = tmp_path / "reports"
    assert build_item("table4", [table4_sweep], reports) == 0
    for suffix in ("md", "tex", "csv"):
        assert (reports / "table4" / f"table4.{suffix}").exists()
    assert build_item("table4", [table4_sweep], reports, check=1.0) == 1  # missing cells fail
    assert main(["--item", "table4", str(tmp_path / "nope")]) == 2


def test_legacy_summary_mode_still_works(table4_sweep, capsys):
    assert main([str(table4_sweep)]) == 0
    assert (table4_sweep / "summary.md").exists()
    assert "dataset=cifar10,loss=pod" in capsys.readouterr().out


def test_where_filter_and_numeric_row_labels(tmp_path, fake_job):
    sweep = tmp_path / "s"
    fake_job(sweep, {"dataset.latent_dim": 9, "seed": 0}, 92.0, config={"loss": {"name": "pod"}})
    fake_job(sweep, {"dataset.latent_dim": 32, "seed": 0}, 50.0, config={"loss": {"name": "softmax"}})
    table = build_table(ITEMS["table2"], find_jobs([sweep]))
    assert table.cell("9", "accuracy").values == [92.0]
    assert table.cell("32", "accuracy").mean is None  # a softmax run is not a Table 2 run


def test_label_override_wins_over_config(tmp_path, fake_job):
    sweep = tmp_path / "s"
    fake_job(
        sweep, {"+label.backbone": "densenet121", "backbone": "small_cnn", "dataset": "cifar10", "loss": "pod"}, 80.0
    )
    table = build_table(ITEMS["table7"], find_jobs([sweep]))
    assert table.cell("densenet121/cifar10", "pod").values == [80.0]


def test_config_table_reads_dataset_configs(tmp_path):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "cifar10.yaml").write_text("num_classes: 10\nlatent_dim: 128\n")
    table = build_config_table(ITEMS["table3"], configs=tmp_path)
    assert table.cell("cifar10", "latent_dim").values == [128]
    assert table.cell("cifar10", "latent_dim").diff == 128 - 256
    assert table.cell("imagenet30", "num_classes").mean is None  # no config: missing, not dropped
    line = next(x for x in tables.markdown(table).splitlines() if x.startswith("| cifar10 |"))
    assert line == "| cifar10 | 10 | 10 | +0 | 128 | 256 | -128 |"
