# bigtop developer tasks. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: run test check fmt clean venv bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/bigtop run examples/demo.ini

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache

# Benchmarks beside Circus and Supervisor (throw-away venvs in /tmp/peers); writes docs/benchmarks.md
bench:
	$(PYTHON) bench/bench.py $(BENCH_ARGS)
