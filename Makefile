# The two commands of the README. Everything else is an implementation detail.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.plinth-installed
DEV     = $(VENV)/.plinth-dev-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $(STAMP)

$(DEV): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV)

## make demo: create .venv, install, run the end-to-end story on the embedded default
demo: $(STAMP)
	PLINTH_HOME=$${PLINTH_HOME:-$(CURDIR)/.plinth-demo} $(BIN)/plinth demo $(DEMO_ARGS)

## make test: install the test extras and run the whole suite
test: $(DEV)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV)
	$(BIN)/ruff check src tests benchmarks

bench: $(DEV)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .plinth-demo test-output
