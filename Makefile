# Two commands do all set-up on a fresh machine with only Python 3.11+:
#   make run   - serve on 127.0.0.1:8000 (SQLite under ./data, memory backends)
#   make test  - run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.authly-installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[redis,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m authly serve

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

bench: $(STAMP)
	$(PY) scripts/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info
