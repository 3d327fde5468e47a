# Cadenza — the two commands of the README (`make demo`, `make test`), plus helpers.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN    := $(VENV)/.installed-run
DEV    := $(VENV)/.installed-dev

.PHONY: demo test bench clean setup

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# the package and its runtime dependencies only (what the demo needs)
$(RUN): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $(RUN)

# plus the test and benchmark tools
$(DEV): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(RUN) $(DEV)

setup: $(DEV)

## demo: set up, then play an adaptive piece from the embedded synth (no sound card: write a WAV, print its path last)
demo: $(RUN)
	$(PY) -m cadenza demo

## test: set up, then run the whole test suite
test: $(DEV)
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: set up, then run every benchmark into bench/results.md (BENCH_ARGS=--quick for a short run)
bench: $(DEV)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
