# One entry point. A fresh machine needs only Python 3.11+: `make demo`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint dev stop clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install  ## the whole system: stand-in Hostaway, embedded Postgres, webhooks, Dagster UI + daemon (Ctrl-C stops it)
	$(BIN)/hostaway-pipeline demo

test: install  ## the whole test suite against real Postgres (embedded unless HOSTAWAY_TEST_DATABASE_URL)
	$(BIN)/pytest

bench: install  ## benchmarks against the strict stand-in; prints a table, writes benchmarks/results/*.json
	$(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check hostaway_pipeline hostaway_pipeline_tests benchmarks
	$(BIN)/mypy hostaway_pipeline benchmarks

dev: install  ## Dagster UI + daemon + webhook receiver on the same instance and database (Ctrl-C stops them)
	$(BIN)/hostaway-pipeline dev

stop: install  ## stop the embedded Postgres
	$(BIN)/hostaway-pipeline db stop

clean:
	rm -rf $(VENV) .pytest_cache
