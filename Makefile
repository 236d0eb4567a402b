# hero_logic — `make run` starts the service, `make test` runs every check. Both install what
# they need from nothing: a virtualenv in .venv from a real Python >= 3.11 (never the pyenv
# shim), and, when run as root, the Debian packages the tests use.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The real interpreter behind whatever python3 is on PATH (a pyenv shim resolves to its target).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import os, sys; assert sys.version_info >= (3, 11); print(os.path.realpath(sys.executable))' 2>/dev/null && break; \
	done)

.PHONY: run test lint typecheck pytest bench clean sysdeps install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "make: no Python >= 3.11 found; install python3 (>= 3.11) and python3-venv" >&2; exit 1; fi
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

sysdeps:
	@true  # issue-specific Debian packages (bubblewrap, chromium) are added here as tiers land

run: install
	$(BIN)/hero_logic serve

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install sysdeps
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/bench_play.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
