# zkmeter developer entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench bench-table clean

setup: $(STAMP) node_modules/.installed

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

demo: setup
	$(VENV)/bin/zkmeter demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -m "" -p no:cacheprovider

test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) -m pytest benches --benchmark-only

bench-table: setup
	$(VENV)/bin/zkmeter bench table

clean:
	rm -rf $(VENV) node_modules .pytest_cache .benchmarks
