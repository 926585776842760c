# Two commands do all set-up on a fresh machine with only Python 3.11+:
#   make run   - serve on 127.0.0.1:8000 (SQLite under ./data, memory backends)
#   make test  - run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.authly-run
DEV_STAMP := $(VENV)/.authly-dev

.PHONY: run test lint bench clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Serving needs the project and its optional Redis client only.
$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[redis]'
	touch $(RUN_STAMP)

# Tests also need pytest, Playwright (driving Debian's chromium) and Authlib.
$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[redis,dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(PY) -m authly serve

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff, mypy --strict on src/, and the import-layer contract (pyproject.toml).
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(RUN_STAMP)
	$(PY) scripts/bench_core.py

clean:
	rm -rf $(VENV) build src/*.egg-info
