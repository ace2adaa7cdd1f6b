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
# --compile-bytecode: the .pyc files are written once here (pip does so by default, uv does not),
# so no `tenantry` process compiles its imports from source; without them, with
# PYTHONDONTWRITEBYTECODE set, `tenantry tenants create` took 1.3 s of CPU instead of 0.35 s
# (bench/README.md, cli_startup.py). COMPILE does the same for this project's own packages.
UV := $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python
COMPILE := $(BIN)/python -m compileall -q tenancy service migrations

.PHONY: install install-test run test citus citus-start citus-stop test-citus bench bench-fleet bench-citus lint format clean

# The server's dependencies only: what `make run` needs.
$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check 'uv>=0.9,<1'
	$(UV) -e .
	$(COMPILE)
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

# A local Citus cluster (coordinator + two workers, PostgreSQL 15, free ports; Citus built from
# ../shared/citus when not installed): deploy/citus/cluster.sh. `make test-citus` runs the whole
# suite on it (tests marked single_server are skipped, with their reason) and stops it.
citus:
	deploy/citus/cluster.sh build

citus-start:
	deploy/citus/cluster.sh start

citus-stop:
	deploy/citus/cluster.sh stop

test-citus: install-test
	@if deploy/citus/cluster.sh status; then ours=; else deploy/citus/cluster.sh start >/dev/null && ours=1; fi; \
	env $$(deploy/citus/cluster.sh env) $(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ -n "$$ours" ]; then deploy/citus/cluster.sh stop; fi; exit $$status

$(BENCH_STAMP): $(TEST_STAMP)
	$(UV) -e '.[test,bench]'
	touch $@

# Benchmarks: minutes on 2 cores; numbers in bench/README.md. Options through BENCH_ARGS, e.g.
# make bench BENCH_ARGS="--sizes 10,100 --rounds 1" (python -m bench.request_path --help).
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.request_path $(BENCH_ARGS)

# One server grown to 100,000 tenants (about half an hour here; 13 GiB of disk while it runs).
# make bench-fleet BENCH_ARGS="--tenants 20000" (python -m bench.fleet --help).
bench-fleet: $(BENCH_STAMP)
	$(BIN)/python -m bench.fleet $(BENCH_ARGS)

# Tenantry on the local Citus cluster beside this machine's PostgreSQL (127.0.0.1:5432, or
# TENANTRY_SINGLE_URL), same run: make bench-citus BENCH_ARGS="--tenants 40" (python -m bench.citus).
bench-citus: $(BENCH_STAMP)
	@if deploy/citus/cluster.sh status; then ours=; else deploy/citus/cluster.sh start >/dev/null && ours=1; fi; \
	env $$(deploy/citus/cluster.sh env) $(BIN)/python -m bench.citus $(BENCH_ARGS); status=$$?; \
	if [ -n "$$ours" ]; then deploy/citus/cluster.sh stop; fi; exit $$status

lint: install-test
	$(BIN)/ruff check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
