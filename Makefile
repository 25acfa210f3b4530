# Two commands do all the set-up on a fresh machine:
#   make demo   - install sounding alone (into .venv-demo, unless .venv exists) and run the demo
#   make test   - install into .venv and run ruff, the import-linter layers contract,
#                 mypy --strict and pytest (twice: with and without the optional extras)
PYTHON ?= python3
VENV ?= .venv
NOOPT_VENV ?= .venv-noopt
BIN := $(VENV)/bin

.PHONY: test lint typecheck pytest pytest-noopt system-deps demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(NOOPT_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(NOOPT_VENV)
	$(NOOPT_VENV)/bin/python -m pip install -q --upgrade pip
	$(NOOPT_VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The HTML report is checked in a real headless Chromium (Debian's package), the exporters
# against a real Prometheus (with promtool) and VictoriaMetrics on loopback. Installed here when
# missing and we are root (CI is); elsewhere install them yourself:
#   apt-get install chromium; apt-get install --no-install-recommends prometheus victoria-metrics
system-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "warning: chromium not installed; the report's browser test will fail"
	@{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && \
	   command -v victoria-metrics >/dev/null 2>&1 ; } || \
	  { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends prometheus victoria-metrics >/dev/null) ; } || \
	  echo "warning: prometheus/victoria-metrics not installed; the engine tests will be skipped"

pytest: $(VENV)/.installed system-deps
	$(BIN)/python -m pytest -q

# The suite once more with no optional extras installed (as prometheus_client's "nooptionals"):
# integrations must degrade cleanly. Tests that exercise an extra for real are deselected here.
pytest-noopt: $(NOOPT_VENV)/.installed
	$(NOOPT_VENV)/bin/python -m pytest -q -m "not needs_sentry and not needs_extras" -p no:cacheprovider

test: lint typecheck pytest pytest-noopt

# The demo needs only sounding's own dependencies (click, rich, platformdirs): its own small
# venv, a few seconds to install, instead of the whole dev set. An existing .venv is reused.
DEMO_VENV ?= .venv-demo

$(DEMO_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q -e .
	touch $@

demo:
	@if [ -x $(BIN)/sounding ]; then $(BIN)/sounding demo; \
	else $(MAKE) --no-print-directory $(DEMO_VENV)/.installed && $(DEMO_VENV)/bin/sounding demo; fi

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(NOOPT_VENV) $(DEMO_VENV) .mypy_cache .pytest_cache .ruff_cache
