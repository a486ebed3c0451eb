# The two commands a new user types: `make run` (the demo coast end to end) and `make test`.
# Both set themselves up: a .venv with the package, and the demo coast if it is missing.
PYTHON ?= python3
# pip spec for torch. Plain `torch` suits any machine; CI pins a CPU wheel it has on disk.
TORCH_SPEC ?= torch
CORES ?= all
VENV := .venv
BIN := $(VENV)/bin
# Snakemake rules call `floodkd`, so the venv's bin must be on PATH for them.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-slow setup demo lint clean

SNAKEMAKE := $(BIN)/snakemake --profile workflow/profiles/default

run: setup demo
	$(SNAKEMAKE) --cores $(CORES)

test: setup
	$(BIN)/pytest

# the slow tests, the end-to-end workflow among them (CI runs these too)
test-slow: setup
	$(BIN)/pytest -m slow

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# A run of its own first, because the other rules find their inputs by globbing data/.
demo: setup
	test -f data/demo/manifest.json || $(SNAKEMAKE) --cores 1 demo

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf results .snakemake
