# Every target sets up the local virtual environment (.venv) first if it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAMP_TIME := $(shell date +%Y-%m-%d_%H-%M-%S)
DEMO_DIR := outputs/demo/$(STAMP_TIME)

.PHONY: help setup demo test clean

help:  ## list the targets
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

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs reports .pytest_cache
