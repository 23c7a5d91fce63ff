# Two commands for a newcomer: `make run` (the daemon, writing restored images) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.deblurd-core
FULL := $(VENV)/.deblurd-full
ARGS ?=

.PHONY: run test data train-all clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(FULL): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev,train]'
	touch $@ $(CORE)

run: $(CORE)
	$(BIN)/deblurd run $(ARGS)

test: $(FULL)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) deblurd-output .pytest_cache
