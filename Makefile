# Quick start on a fresh Debian machine, as root: `make demo` and `make test`.
# Every step skips what is already in place.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup venv engine images demo test unit e2e bench

setup: venv engine images

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

engine:
	bash testbed/engine.sh

images: venv engine
	$(PY) -m testbed.images

demo: setup
	$(PY) -m testbed.demo

test: setup
	$(VENV)/bin/pytest

unit: venv
	$(VENV)/bin/pytest tests/unit

e2e: setup
	$(VENV)/bin/pytest tests/e2e

# Benchmarks on the test bed (each holds it exclusively; docs/benchmarks.md has the figures).
# HWBENCH_RUNS=5 runs per figure (median); HWBENCH_ONE_LINER=0 leaves out the runbook's one-liner.
bench: setup
	$(PY) bench/noop.py
	$(PY) bench/api_change.py
	$(PY) bench/scaling.py
	$(PY) bench/profile_noop.py
