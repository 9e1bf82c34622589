# zkmeter developer entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: setup chromium demo test test-fast test-browser lint bench bench-table clean

setup: $(STAMP) node_modules/.installed chromium

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

# Debian's Chromium for the dashboard's browser tests (tests/test_ui_browser.py, Playwright
# drives it; no browser is ever downloaded). Installed when missing if we are root with apt
# (CI, fresh machines: ~35 s); otherwise, or if the install fails, those tests skip and say why.
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null \
	    || echo "warning: could not install chromium: the browser tests will be skipped"; \
	else \
	  echo "note: no $(CHROMIUM) and not root: the browser tests will be skipped"; \
	fi

demo: setup
	$(VENV)/bin/zkmeter demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -m "" -p no:cacheprovider

test-fast: setup
	$(PY) -m pytest -m "not slow"

test-browser: setup
	$(PY) -m pytest -m browser tests/test_ui_browser.py

bench: setup
	$(PY) -m pytest benches --benchmark-only

bench-table: setup
	$(VENV)/bin/zkmeter bench table

clean:
	rm -rf $(VENV) node_modules .pytest_cache .benchmarks
