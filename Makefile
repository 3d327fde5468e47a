# Cadenza — the two commands of the README, plus helpers.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean setup

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## demo: set up, then play an adaptive piece from the embedded synth (or render a WAV when there is no sound card)
demo: $(STAMP)
	$(PY) -m cadenza demo

## test: set up, then run the whole test suite
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: set up, then run the benchmarks
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
