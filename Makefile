# Two commands do everything on a fresh machine:
#   make run    install into .venv and run Seamline on embedded defaults (SQLite, in-process sessions)
#   make test   install, start Redis and PostgreSQL for the run, and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run shell test test-fast lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# This repository's config/ is the retail template: a bot project like any `seamline init` makes
# (data and models in var/ here).
run: $(STAMP)
	$(BIN)/seamline --project . nlu train
	$(BIN)/seamline --project . run

shell: $(STAMP)
	$(BIN)/seamline --project . nlu train
	$(BIN)/seamline --project . shell

test: $(STAMP)
	bash tests/services.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

# In-process tests only, no servers started: for everyday work (the tests needing Redis or
# PostgreSQL skip themselves, browser and real-process tests are left out). They are safe in
# parallel (every test has its own database, ports and temporary files); the services tests are
# not (they share one Redis), so `make test` runs in one process.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 -m "not browser and not services and not slow" $(PYTEST_ARGS)

# The quality gate CI runs before the tests: ruff's linter, ruff's formatter (check only) and mypy.
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	MYPY=$(BIN)/mypy bash .ci/typecheck || status=1; \
	exit $$status

bench: $(STAMP)
	$(BIN)/python benchmarks/web_chat.py
