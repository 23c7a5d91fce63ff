"""Paired training and test batches drawn from the package's blur synthesis (deblurd.optics.blur).

Digit packs follow the seed protocol at the working scale (28x28, padded to 32): the exact linear map of
"resize to 256, Gaussian blur sigma, area-downscale" from deblurd.optics.blur.protocol_matrix. Photo packs cut patches
from photos scaled to the working width and degrade them with a defocus disk plus sensor noise.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from deblurd.optics import blur
from deblurd.frames import SEVERITY_LABELS
from deblurd.restore.manifest import RADIUS_SCALE, WIENER_SIGMA
from deblurd.restore.packs import PackSpec, pack_spec
from deblurd.restore.radius_map import generator_input
from deblurd.restore.tiling import reflect_pad
from tools.data import sources as data

_MARGIN = 16
_SIGMA_STEP = 0.25


@lru_cache(maxsize=512)
def _matrix(sigma_index: int, size: int) -> np.ndarray:
    return blur.protocol_matrix(sigma_index * _SIGMA_STEP, size)


def digit_degrade(images: np.ndarray, sigmas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seed-protocol blur at the working scale for a batch of small square images, with 8-bit-level noise."""
    out = np.empty_like(images)
    for i, (img, s) in enumerate(zip(images, sigmas)):
        m = _matrix(int(round(s / _SIGMA_STEP)), img.shape[0])
        out[i] = m @ img @ m.T
    out += rng.normal(0, 0.5 / 255, out.shape).astype(np.float32)
    return np.clip(out, 0, 1)


def pad_digits(images: np.ndarray, tile: int) -> np.ndarray:
    """Digit images padded to the model tile exactly as the daemon pads an image smaller than a tile."""
    return reflect_pad(images, tile, tile)[0][..., None]


MAP_CELL = 8
"""Pixels per radius-map cell (tools.train.models.MAP_STRIDE; not imported, so the synthesis needs no Keras)."""
TOLD_RELATIVE_ERROR = 0.1
TOLD_ABSOLUTE_ERROR = 0.3
"""A non-blind generator is trained on the true radius as a mapper would report it: averaged per map cell, then
off by about this much (relative, and px at the working scale), so it tolerates the mapper's typical error."""


def told_radius(radius: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The radius map (px per pixel) a generator is told for a true per-pixel radius: cell means, interpolated back
    to pixels as the daemon does, scaled and shifted by one random error per sample, never negative."""
    h, w = radius.shape
    cells = cv2.resize(radius.astype(np.float32), (max(1, w // MAP_CELL), max(1, h // MAP_CELL)),
                       interpolation=cv2.INTER_AREA)
    told = cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR)
    error = rng.normal(0.0, TOLD_RELATIVE_ERROR), rng.normal(0.0, TOLD_ABSOLUTE_ERROR)
    return np.maximum(told * (1.0 + error[0]) + error[1], 0.0).astype(np.float32)


def nonblind_batch(degraded: np.ndarray, radii: list[np.ndarray], inputs: tuple[str, ...],
                   rng: np.random.Generator) -> np.ndarray:
    """A generator batch (N, H, W, channels) of degraded luminance (N, H, W, 1) and each sample's true radius map,
    channels built as the daemon builds them (deblurd.restore.radius_map.generator_input)."""
    return np.stack([generator_input(d[..., 0], told_radius(r, rng), inputs, RADIUS_SCALE, WIENER_SIGMA)
                     for d, r in zip(degraded, radii)])


class PairSource:
    """Endless (blurred, sharp) batches for one pack and generator role ('semi' or 'heavy'); a non-blind generator's
    `inputs` add the (told) radius and Wiener channels."""

    def __init__(self, pack: str, role: str, split: str, seed: int, patch: int = 128, textured: float = 0.0,
                 inputs: tuple[str, ...] = ("luma",)):
        self.spec, self.role, self.patch, self.textured = pack_spec(pack), role, patch, textured
        self.inputs = tuple(inputs)
        self.rng = np.random.default_rng(seed)
        self.amount_range = self.spec.blur.train_range(role)
        if self.spec.protocol == "seed-paper":
            self.images = data.digits(pack, "train" if split == "train" else "test")
        else:
            self.photos = load_photos(split, self.spec.working_width)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        amounts = self.rng.uniform(*self.amount_range, size)
        if self.spec.protocol == "seed-paper":
            sharp = self.images[self.rng.integers(0, len(self.images), size)]
            sharp = _augment_digits(sharp, self.rng)
            tile = self.spec.tile
            return pad_digits(digit_degrade(sharp, amounts, self.rng), tile), pad_digits(sharp, tile)
        pairs = [photo_pair(self.photos, self.patch, a, self.spec.blur, self.rng,
                            textured=self.rng.random() < self.textured) for a in amounts]
        x = np.stack([p[0] for p in pairs])[..., None]
        if len(self.inputs) > 1:
            x = nonblind_batch(x, [np.full((self.patch, self.patch), a, np.float32) for a in amounts], self.inputs,
                               self.rng)
        return x, np.stack([p[1] for p in pairs])[..., None]


SHARP_IN_FOCUS = 0.25
"""Share of training frames of the sharp class drawn exactly in focus (amount 0): the commonest real frame, and the
one a wrong route hurts most (pass-through is exact there, any generator is not)."""


class SeveritySource:
    """Endless (crop, class index) batches for the blur-severity classifier, classes drawn evenly (uniformly within
    each class; training also puts SHARP_IN_FOCUS of its sharp frames exactly in focus)."""

    def __init__(self, pack: str, split: str, seed: int):
        self.spec: PackSpec = pack_spec(pack)
        self.in_focus = SHARP_IN_FOCUS if split == "train" else 0.0
        self.rng = np.random.default_rng(seed)
        self.crop = self.spec.classifier_crop
        if self.spec.protocol == "seed-paper":
            self.images = data.digits(pack, "train" if split == "train" else "test")
        else:
            self.photos = load_photos(split, self.spec.working_width)

    def amounts(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        labels = self.rng.integers(0, 3, size)
        ranges = [self.spec.blur.class_range(n) for n in SEVERITY_LABELS]
        in_focus = lambda c: self.in_focus and c == 0 and self.rng.random() < self.in_focus  # noqa: E731
        amounts = [0.0 if in_focus(c) else self.rng.uniform(*ranges[c]) for c in labels]
        return np.array(amounts, np.float32), labels

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        amounts, labels = self.amounts(size)
        if self.spec.protocol == "seed-paper":
            sharp = _augment_digits(self.images[self.rng.integers(0, len(self.images), size)], self.rng)
            return pad_digits(digit_degrade(sharp, amounts, self.rng), self.spec.tile), labels
        crops = [photo_pair(self.photos, self.crop, a, self.spec.blur, self.rng, textured=True)[0] for a in amounts]
        return np.stack(crops)[..., None], labels


def _augment_digits(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    flip = rng.random(len(images)) < 0.5
    out = images.copy()
    out[flip] = out[flip, :, ::-1]
    return out


TRAIN_SCALES = (1.25, 1.5, 2.0)
"""Training photos wider than the working width also serve at these multiples of it (only ever downscaled), so
38 photos offer more content scales; validation photos are used at the working width only."""


@lru_cache(maxsize=8)
def load_photos(split: str, working_width: int,
                load: Callable[[Path, int], np.ndarray] = data.load_luma) -> list[np.ndarray]:
    """Every photo of the split at the working width (luminance, or as `load` reads it), plus larger copies of
    large training photos; read once per process (callers only read the list)."""
    photos = []
    for path in data.photo_files(split):
        photos.append(load(path, working_width))
        if split != "train":
            continue
        width = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_2).shape[1] * 2
        photos += [load(path, int(working_width * s)) for s in TRAIN_SCALES if width > working_width * s]
    return photos


def _gradient_energy(img: np.ndarray) -> float:
    return float(np.mean(np.abs(np.diff(img, axis=0))) + np.mean(np.abs(np.diff(img, axis=1))))


def photo_pair(photos: list[np.ndarray], patch: int, amount: float, definition: blur.BlurDefinition,
               rng: np.random.Generator, textured: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One (degraded, sharp) patch: a random crop with margin, flipped/rotated, degraded, margin removed."""
    size = patch + 2 * _MARGIN
    candidates = []
    for _ in range(4 if textured else 1):
        img = photos[rng.integers(0, len(photos))]
        y = rng.integers(0, img.shape[0] - size + 1)
        x = rng.integers(0, img.shape[1] - size + 1)
        candidates.append(img[y : y + size, x : x + size])
    crop = max(candidates, key=_gradient_energy) if textured else candidates[0]
    crop = np.rot90(crop, rng.integers(0, 4))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = np.ascontiguousarray(crop) * np.float32(rng.uniform(0.7, 1.1))
    crop = np.clip(crop, 0, 1)
    degraded = definition.spec(amount, rng).apply(crop, rng)
    inner = (slice(_MARGIN, _MARGIN + patch),) * 2
    return degraded[inner], crop[inner].astype(np.float32)
