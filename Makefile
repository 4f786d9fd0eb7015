# The two commands of the README: `make run` (set up and start the product) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: run test system-packages lint format bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "llmledger needs Python 3.11 or newer; this $(PYTHON) is " + sys.version.split()[0] + " (pass PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/llmledger demo --port 4318 --dashboard-port 8501

# chromium, postgresql and haproxy: installed here when missing (as root), or one line saying how.
system-packages:
	@bash scripts/system-packages

test: system-packages $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.installed
	$(PY) -m benchmarks.wrapper_overhead

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
