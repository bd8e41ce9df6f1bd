# Two commands do all the set-up on a fresh machine (Python 3.11 + package registries):
#   make demo   - create .venv, install knot-prefect, run the end-to-end pipeline
#   make test   - create .venv, install knot-prefect with test extras, run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_WHEELS ?= /opt/wheels
TORCH_STAMP := $(VENV)/.torch-installed

.PHONY: demo test lint typecheck check bench clean services install dist docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv

$(STAMP): $(BIN)/python pyproject.toml requirements/constraints.txt
	$(BIN)/uv pip install -q --python $(BIN)/python -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

$(TORCH_STAMP): $(STAMP)
	# PyTorch for the GPU recipe's CPU test: the CPU build from this machine's wheel folder
	# when present (PyPI's default build is a multi-GB CUDA download), else PyPI's.
	if ls $(TORCH_WHEELS)/torch-2.13.0*.whl >/dev/null 2>&1; then \
	  $(BIN)/uv pip install -q --python $(BIN)/python --find-links $(TORCH_WHEELS) "torch==2.13.0"; \
	else \
	  $(BIN)/uv pip install -q --python $(BIN)/python "torch==2.13.0"; \
	fi
	touch $(TORCH_STAMP)

install: $(STAMP)

# The release artifacts: sdist and wheel in dist/ (the packaging tests install the wheel).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*

demo: $(STAMP)
	$(BIN)/knot demo

services:
	./scripts/install-services.sh

# The suite runs in two lanes side by side (scripts/run-tests.sh says why).
test: $(STAMP) $(TORCH_STAMP) services dist
	KNOT_DIST=$(CURDIR)/dist ./scripts/run-tests.sh

lint: $(STAMP)
	$(BIN)/ruff check knot_prefect tests benchmarks
	# The layers of docs/architecture.md ([tool.importlinter] in pyproject.toml).
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

# The documentation site (mkdocs.yml): guides from docs/, API reference from docstrings.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .knot .pytest_cache .mypy_cache .ruff_cache dist site
