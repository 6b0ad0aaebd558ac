# Every target sets up the local virtual environment (.venv) first if it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAMP_TIME := $(shell date +%Y-%m-%d_%H-%M-%S)
DEMO_DIR := outputs/demo/$(STAMP_TIME)

.PHONY: help setup demo fmnist test test-full lint golden clean

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

FMNIST_DIR := outputs/fmnist/$(STAMP_TIME)
# extra Hydra overrides of make fmnist, e.g. OVERRIDES="seed=0,1,2 dataset.root=DIR"
OVERRIDES ?=
fmnist: $(STAMP)  ## all twelve losses on real Fashion-MNIST (Debian's dataset-fashion-mnist or dataset.root), CPU, then the table
	OMP_NUM_THREADS=1 $(PY) train.py -m experiment=fmnist hydra.sweep.dir=$(FMNIST_DIR) $(OVERRIDES)
	$(PY) -m podexp.aggregate $(FMNIST_DIR)

# Test tiers (markers in pyproject.toml): the fast tier leaves out `slow` (subprocesses: train.py, torchrun,
# scripts/, `make tables-smoke`) and `gpu` (CUDA only); the full tier is what CI runs.
PYTEST_ARGS ?=
test: $(STAMP)  ## fast tests: units + in-process training, no subprocesses, no GPU (a few minutes on 2 cores)
	$(PY) -m pytest -q -m "not slow and not gpu" --durations=15 $(PYTEST_ARGS)

test-full: $(STAMP)  ## every test: adds the subprocess/end-to-end tier and tables-smoke (GPU tests skip without CUDA)
	$(PY) -m pytest -q --durations=15 $(PYTEST_ARGS)

LINT_PATHS := podexp scripts tests train.py
lint: $(STAMP)  ## ruff: lint rules and formatting check (config in pyproject.toml)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

golden: $(STAMP)  ## rewrite tests/golden/tables_smoke.json from a fresh tables-smoke run (after an intended change)
	PODEXP_UPDATE_GOLDEN=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_tables_smoke.py

BENCH_JSON ?= reports/bench.json
.PHONY: bench
bench: $(STAMP)  ## images/s of the podexp trainer vs the authors'-style loop, per-loss step cost (docs/benchmarks.md)
	$(PY) scripts/bench.py --json $(BENCH_JSON)

GPU_OUT ?= reports/gpu
.PHONY: gpu-check
gpu-check: $(STAMP)  ## on a CUDA machine (< 9 min on one H100): tests/test_gpu.py, eager vs CUDA-graph steps, profile
	$(PY) scripts/gpu_check.py --out $(GPU_OUT)

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
