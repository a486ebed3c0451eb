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

.PHONY: run test setup demo lint clean

run: setup demo
	$(BIN)/snakemake --cores $(CORES) --profile workflow/profiles/default

test: setup
	$(BIN)/pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	test -f data/demo/manifest.json || $(BIN)/floodkd demo --out data/demo

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf results .snakemake
