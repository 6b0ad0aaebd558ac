# Every target sets up the local virtual environment (.venv) first if it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAMP_TIME := $(shell date +%Y-%m-%d_%H-%M-%S)
DEMO_DIR := outputs/demo/$(STAMP_TIME)

.PHONY: help setup demo test clean

help:  ## list the targets (and: make table1 ... table9, fig2 ... fig6: one paper item each)
	@grep -E '^[a-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install podexp with its test tools

demo: $(STAMP)  ## Softmax vs POD on the embedded digits, 3 seeds, then the table (offline, CPU)
	$(PY) train.py -m experiment=demo loss=softmax,pod seed=0,1,2 hydra.sweep.dir=$(DEMO_DIR)
	$(PY) -m podexp.aggregate $(DEMO_DIR)

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest -q

BENCH_JSON ?= reports/bench.json
.PHONY: bench
bench: $(STAMP)  ## images/s of the podexp trainer vs the authors'-style loop, per-loss step cost (docs/benchmarks.md)
	$(PY) scripts/bench.py --json $(BENCH_JSON)

# The paper's tables and figures (docs/reproduce.md): `make table4` launches the item's runs, then
# writes reports/table4/; extra Hydra overrides for every job: `make table4 ARGS="-- logger=wandb"`.
ITEMS := table1 table2 table3 table4 table5 table6 table7 table8 table9 fig2 fig3 fig4 fig5 fig6
SMOKE_REPORTS ?= reports/smoke
ARGS ?=
.PHONY: $(ITEMS) tables-smoke

$(ITEMS): $(STAMP)
	$(PY) scripts/reproduce.py $@ $(ARGS)

tables-smoke: $(STAMP)  ## every table and figure on tiny data, CPU (reports in SMOKE_REPORTS)
	$(PY) scripts/reproduce.py all --smoke --reports $(SMOKE_REPORTS) $(ARGS)

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs reports .pytest_cache
