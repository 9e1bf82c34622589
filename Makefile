# zkmeter developer entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The native core (native/, Rust): rebuilt and reinstalled when its sources change.
NATIVE_STAMP := $(VENV)/.native-installed
NATIVE_SRC   := native/Cargo.toml native/Cargo.lock native/pyproject.toml \
                native/zkmeter_native.pyi $(wildcard native/src/*.rs)
# --lib: the unit tests only (no doc tests), so the cdylib is not built a second time.
CARGO_TEST   := cargo test --release --locked --lib --manifest-path native/Cargo.toml

CHROMIUM := /usr/bin/chromium

# The test suite on two pytest-xdist workers, a test file each at a time (a module's fixtures,
# such as its anvil node, stay in one process): about 0.6 of the one-process time on 2 cores,
# since many tests wait on a node, a database or a subprocess. PYTEST_PARALLEL= runs it in one.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

.PHONY: setup postgres chromium demo test test-fast test-native test-browser lint bench bench-table clean

setup: $(STAMP) $(NATIVE_STAMP) node_modules/.installed

# PostgreSQL's server binaries for the operator's tests (installed from Debian's packages when
# missing and run as root; the tests start and stop their own loopback cluster).
postgres:
	tools/ensure-postgres.sh

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# maturin (pinned in native/pyproject.toml) builds the crate in release mode from the
# committed Cargo.lock; native/target keeps the build for incremental rebuilds.
$(NATIVE_STAMP): $(STAMP) $(NATIVE_SRC)
	$(PY) -m pip install --quiet -c constraints.txt ./native
	touch $(NATIVE_STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

# Debian's Chromium for the dashboard's browser tests (tests/zkmeter/test_ui_browser.py, Playwright
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

test: setup postgres chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(CARGO_TEST)
	$(PY) -m pytest -m "" -p no:cacheprovider $(PYTEST_PARALLEL)

test-native: setup
	$(CARGO_TEST)
	$(PY) -m pytest tests/prover/test_native_*.py tests/verifier/test_native_pairing.py

test-fast: setup postgres chromium
	$(PY) -m pytest -m "not slow" $(PYTEST_PARALLEL)

test-browser: setup chromium
	$(PY) -m pytest -m browser tests/zkmeter/test_ui_browser.py

bench: setup
	$(PY) -m pytest benches --benchmark-only

bench-table: setup
	$(VENV)/bin/zkmeter bench table

clean:
	rm -rf $(VENV) node_modules .pytest_cache .benchmarks native/target
