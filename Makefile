# make run   - set up and start everything (embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set)
# make test  - install the dev dependencies and run the whole test suite
# make lint  - ruff and mypy
# make bench - every benchmark against its reference (~60 min), writes docs/performance.md
# make bench-quick - the same, a few seconds each (CI smoke test), writes var/bench/performance-quick.md

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test lint format clean bench bench-quick

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(PY) -m helpdesk.services run

test: $(VENV)/.installed-dev
	$(PY) -m helpdesk.services exec -- $(PY) -m pytest -rs $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(PY) -m helpdesk.services exec -- $(PY) -m bench.run $(BENCH_ARGS)

bench-quick: $(VENV)/.installed-dev
	$(PY) -m helpdesk.services exec -- $(PY) -m bench.run --quick $(BENCH_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=$${DATABASE_URL:-postgres://lint@localhost/lint} REDIS_URL=$${REDIS_URL:-redis://localhost:6379/0} SECRET_KEY=$${SECRET_KEY:-lint-only} $(VENV)/bin/mypy helpdesk conversations tickets

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
