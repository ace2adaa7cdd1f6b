# Tenantry: `make run` serves the API with a demo tenant, `make test` runs the whole suite.
# Both use an embedded PostgreSQL unless TENANTRY_DATABASE_URL is set.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-installed-stamp
BENCH_STAMP := $(VENV)/.bench-installed-stamp
PORT ?= 8000
# uv (from PyPI, into the venv by its own pip) installs in seconds what pip takes a minute for.
UV := $(BIN)/uv pip install -q --python $(BIN)/python

.PHONY: install install-test run test bench bench-fleet lint format clean

# The server's dependencies only: what `make run` needs.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check 'uv>=0.9,<1'
	$(UV) -e .
	touch $@

# Plus the test tools (pytest, ruff, schemathesis ...): what `make test` needs.
$(TEST_STAMP): $(STAMP)
	$(UV) -e '.[test]'
	touch $@

install: $(STAMP)

install-test: $(TEST_STAMP)

# One process: migrate, the demo tenant's one live key and a curl, then serve (port checked first).
run: install
	$(BIN)/tenantry serve --demo --port $(PORT)

test: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

$(BENCH_STAMP): $(TEST_STAMP)
	$(UV) -e '.[test,bench]'
	touch $@

# Benchmarks: minutes on 2 cores; numbers in bench/README.md. Options through BENCH_ARGS, e.g.
# make bench BENCH_ARGS="--sizes 10,100 --rounds 1" (python -m bench.request_path --help).
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.request_path $(BENCH_ARGS)

# One server grown to 100,000 tenants (about half an hour here; 13 GiB of disk while it runs).
# make bench-fleet BENCH_ARGS="--tenants 20000" (python bench/fleet.py --help).
bench-fleet: $(BENCH_STAMP)
	$(BIN)/python bench/fleet.py $(BENCH_ARGS)

lint: install-test
	$(BIN)/ruff check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
