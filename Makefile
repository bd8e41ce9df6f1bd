# Two commands do all the set-up on a fresh machine (Python 3.11 + package registries):
#   make demo   - create .venv, install knot-prefect, run the end-to-end pipeline
#   make test   - create .venv, install knot-prefect with test extras, run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench clean services

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv

$(STAMP): $(BIN)/python pyproject.toml requirements/constraints.txt
	$(BIN)/uv pip install -q --python $(BIN)/python -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/knot demo

services:
	./scripts/install-services.sh

test: $(STAMP) services
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check knot_prefect tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

bench: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .knot .pytest_cache .mypy_cache .ruff_cache
