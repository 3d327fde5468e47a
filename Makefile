# Cadenza — the two commands of the README (`make demo`, `make test`), plus helpers.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN    := $(VENV)/.installed-run
DEV    := $(VENV)/.installed-dev

.PHONY: demo test bench soak typecheck clean setup

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
	$(PY) -m bench.run $(BENCH_ARGS)

## soak: set up, then run the runtime under load into a JACK dummy server for SOAK_MINUTES → bench/soak.md, soak.png
SOAK_MINUTES ?= 30
soak: $(DEV)
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

## typecheck: mypy over the package as it is imported (cadenza.runtime, .sdk, .proto mapped from their folders)
typecheck: $(DEV)
	rm -rf build/typecheck && mkdir -p build/typecheck/cadenza
	for f in cadenza/*.py; do ln -s "$$PWD/$$f" build/typecheck/cadenza/; done
	ln -s "$$PWD/cadenza/graph_format" build/typecheck/cadenza/graph_format
	ln -s "$$PWD/runtime" build/typecheck/cadenza/runtime
	ln -s "$$PWD/sdk" build/typecheck/cadenza/sdk
	ln -s "$$PWD/proto" build/typecheck/cadenza/proto
	cd build/typecheck && ../../$(PY) -m mypy --config-file ../../pyproject.toml -p cadenza

clean:
	rm -rf $(VENV) build *.egg-info
