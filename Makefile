# The two commands: `make run` runs the bank, `make test` checks it. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "timebank-sms needs Python 3.11 or newer: run make PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/timebank run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# In parallel, one pytest process a core (each with its own database and Redis database, see
# tests/conftest.py); PYTEST_WORKERS=0 runs them all in this one. PYTEST_ARGS come after, so
# `make test PYTEST_ARGS="-n 0 tests/test_x.py"` works too.
PYTEST_WORKERS ?= auto

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The figures at scale, written to docs/PERFORMANCE.md; BENCH_ARGS="--only matching" for one part.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache .hypothesis
