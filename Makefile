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

.PHONY: run test lint typecheck pytest bench clean sysdeps install admin-assets chromium screenshots

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "make: no Python >= 3.11 found; install python3 (>= 3.11) and python3-venv" >&2; exit 1; fi
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

sysdeps:
	@# bubblewrap for the bwrap sandbox tier (and its tests); libseccomp2 for its seccomp filter;
	@# strace for the store's fault-injection test (ENOSPC on a page write); passt (pasta) for the
	@# user-mode network of @flow(network=True) plays under bwrap; e2fsprogs (mkfs.ext4, debugfs)
	@# for the file system of each run's workdir (--workdir-mb).
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		missing=""; \
		command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
		ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing="$$missing libseccomp2"; \
		command -v strace >/dev/null 2>&1 || missing="$$missing strace"; \
		command -v pasta >/dev/null 2>&1 || missing="$$missing passt"; \
		command -v mkfs.ext4 >/dev/null 2>&1 && command -v debugfs >/dev/null 2>&1 || missing="$$missing e2fsprogs"; \
		if [ -n "$$missing" ]; then \
			echo "make: installing$$missing"; \
			apt-get install -y -qq $$missing >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; }; \
		fi; \
	fi

run: install sysdeps admin-assets
	$(BIN)/hero_logic serve

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install sysdeps chromium admin-assets
	$(BIN)/python -m pytest

test: lint typecheck pytest

# The admin's editor (CodeMirror 6, pinned in package-lock.json), bundled by esbuild into an
# ignored folder: third-party JS is built here, never committed. Without it the admin still
# works, with a plain text area for the source.
ADMIN_FRONTEND := hero_logic/admin/frontend
ADMIN_BUNDLE := hero_logic/admin/static/vendor/editor.js

admin-assets: $(ADMIN_BUNDLE)

$(ADMIN_BUNDLE): $(ADMIN_FRONTEND)/package.json $(ADMIN_FRONTEND)/package-lock.json $(ADMIN_FRONTEND)/src/editor.js
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq nodejs npm; } \
		|| { echo "make: npm is needed to build the admin's editor (apt-get install nodejs npm)" >&2; exit 1; }
	cd $(ADMIN_FRONTEND) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	@test -s $@

# Debian's chromium for the admin's browser tests (Playwright drives it; never `playwright install`).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "make: /usr/bin/chromium is missing (sudo apt-get install chromium): the browser tests will be skipped" >&2; fi; \
	fi

# Re-take the admin screenshots the README shows (docs/screenshots/), from the browser tests.
screenshots: install chromium admin-assets
	mkdir -p docs/screenshots
	HERO_LOGIC_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/test_admin_browser.py tests/test_admin_fleet.py tests/test_admin_manage.py

# Every benchmark prints its figures beside the floor or peer measured in the same run.
bench: install sysdeps
	@for b in bench/bench_play.py bench/bench_resume.py bench/bench_rpc.py bench/bench_store.py bench/bench_sandbox.py bench/bench_paused.py bench/bench_ingest.py bench/bench_warm.py bench/bench_peers.py bench/bench_real_work.py bench/bench_workdir.py bench/bench_webhook.py bench/bench_resume_url.py bench/bench_schedules.py; do \
		echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
