# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean bench bench-quick

# pip is upgraded once, when the venv is made: editable installs need a recent one.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project metadata changes; otherwise the venv is reused.
# setuptools reports every editable install with an "Editable installation." warning
# (informational, not a problem): that one message is filtered; errors and every other
# warning still show.
$(STAMP): export PYTHONWARNINGS = ignore:Editable installation:UserWarning
$(STAMP): $(BIN)/python pyproject.toml client-sdk/pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./client-sdk
	@touch $(STAMP)

install: $(STAMP)

# The benchmark's peers (FastAPI, SQLModel, python-socketio, matplotlib): `make bench`
# needs them to run and `make lint` to type-check bench/ as strictly as the rest.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): export PYTHONWARNINGS = ignore:Editable installation:UserWarning
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]' -e ./client-sdk
	@touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/plaza migrate
	$(BIN)/plaza serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

# mypy checks the project with tests/ and bench/ ([tool.mypy] in pyproject.toml), then the
# three conftest.py files that pytest imports each as the top-level module `conftest`, one
# run each (one run cannot hold three modules of one name), then the SDK by its own config.
lint: $(BENCH_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy tests/domain/conftest.py
	$(BIN)/mypy tests/server/conftest.py
	$(BIN)/mypy tests/storage/conftest.py
	cd client-sdk && ../$(BIN)/mypy

# Plaza against its peers (BENCHMARKS.md): needs PostgreSQL on 127.0.0.1:5432 (user
# postgres, trust), Redis on 127.0.0.1:6379 and wrk; each scenario makes its own database
# and Redis key prefix and drops them. `bench` takes ~20 minutes, `bench-quick` a few.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run_all
	$(BIN)/python -m bench.report

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench.run_all --quick
	$(BIN)/python -m bench.report

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
