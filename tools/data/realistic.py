"""Training batches from the realistic defocus synthesis (deblurd.optics.defocus): what a defocused Camera Module 3 makes.

Each sample is a colour crop of a training photo pushed through a layered depth scene (an in-focus plane, occlusion
at layer edges), a lens PSF with rims, colour and cat's eye, and the camera (Bayer, noise, ISP, JPEG). Generators
learn luminance: the camera's output to the photo that went in, identity included wherever the crop is in focus.
The classifier learns the class of the median radius under a crop, and "sharp" for a crop with no texture (blur
cannot show there, and passing it through is what the map should do).
"""

from __future__ import annotations

import cv2
import numpy as np

from deblurd.optics import defocus
from deblurd.restore.blur_map import FLAT_GRADIENT, mean_gradient
from deblurd.frames import SEVERITY_LABELS
from deblurd.restore.packs import pack_spec
from tools.data import sources as data
from tools.data.synth import MAP_CELL, load_photos, nonblind_batch

MARGIN = 16
FLAT_SOURCE = 2 * FLAT_GRADIENT
"""A source crop with less texture than this is labelled sharp whatever its blur."""
CLASS_MAX_RADIUS = {"sharp": 1.0, "semi": 3.0}
"""Largest radius drawn when a sharp or semi crop is wanted (heavy draws up to the pack's heavy_max)."""
TRIES = 8
MAP_STRIDE = MAP_CELL
FLAT_CELL_WEIGHT = 0.1
"""Loss weight of a map cell without texture in the photo: its blur is not observable, only inferable from context."""


def luma(rgb: np.ndarray) -> np.ndarray:
    """Y of YCrCb of a float RGB image in [0, 1], as the daemon computes it (from 8-bit)."""
    u8 = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(u8, cv2.COLOR_RGB2YCrCb)[:, :, 0].astype(np.float32) / 255.0


class RealisticSource:
    """Endless realistic batches of one pack: (degraded, sharp) luminance pairs or (crop, class) for the classifier."""

    def __init__(self, pack: str, split: str, seed: int) -> None:
        self.spec = pack_spec(pack)
        if self.spec.protocol != "photo":
            raise ValueError(f"the realistic synthesis is for photo packs; {pack} follows the {self.spec.protocol} "
                             f"protocol")
        self.rng = np.random.default_rng(seed)
        self.photos = load_photos(split, self.spec.working_width, data.load_rgb)

    def _crop(self, size: int) -> np.ndarray:
        """A random flipped and rotated crop, from the photos at least `size` in both dimensions."""
        fits = [p for p in self.photos if min(p.shape[:2]) >= size]
        img = fits[self.rng.integers(0, len(fits))]
        y = self.rng.integers(0, img.shape[0] - size + 1)
        x = self.rng.integers(0, img.shape[1] - size + 1)
        crop = img[y:y + size, x:x + size]
        crop = np.rot90(crop, self.rng.integers(0, 4))
        return np.ascontiguousarray(crop[:, ::-1] if self.rng.random() < 0.5 else crop).astype(np.float32) / 255

    def sample(self, patch: int, max_radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(degraded luma, sharp luma, |radius| map) of one patch, margins cut after the synthesis."""
        crop = self._crop(patch + 2 * MARGIN)
        out = defocus.degrade(crop, self.rng, max_radius)
        inner = (slice(MARGIN, MARGIN + patch),) * 2
        return luma(out.image)[inner], luma(crop)[inner], np.abs(out.radius[inner])

    def pairs(self, role: str, size: int, patch: int,
              inputs: tuple[str, ...] = ("luma",)) -> tuple[np.ndarray, np.ndarray]:
        """A batch for the generator of `role`: radii up to the top of its training range; a non-blind generator's
        `inputs` add the radius (the synthesis's own, as a mapper would tell it) and Wiener channels."""
        max_radius = self.spec.blur.train_range(role)[1]
        samples = [self.sample(patch, max_radius) for _ in range(size)]
        x = np.stack([s[0] for s in samples])[..., None]
        if len(inputs) > 1:
            x = nonblind_batch(x, [s[2] for s in samples], tuple(inputs), self.rng)
        return x, np.stack([s[1] for s in samples])[..., None]

    def label(self, sharp: np.ndarray, radius: np.ndarray) -> int:
        """The class index of a crop: sharp when it has no texture, else its median radius's class."""
        if mean_gradient(sharp) < FLAT_SOURCE:
            return 0
        return SEVERITY_LABELS.index(self.spec.blur.label(float(np.median(radius))))  # type: ignore[arg-type]

    def cells(self, size: int, patch: int = 192) -> tuple[np.ndarray, np.ndarray]:
        """A dense blur-map batch: crops and, per MAP_STRIDE cell, the class of its mean radius by the pack's bands
        (channel 0) and the cell's loss weight (channel 1)."""
        crops, targets = self.radius_cells(size, patch)
        targets[..., 0] = self.spec.blur.class_index(targets[..., 0])
        return crops, targets

    def radius_cells(self, size: int, patch: int = 192) -> tuple[np.ndarray, np.ndarray]:
        """A radius-map batch: crops and, per MAP_STRIDE cell, the mean radius in px (channel 0) and the cell's loss
        weight (channel 1: 1 where the photo had texture, FLAT_CELL_WEIGHT where blur cannot show)."""
        crops, targets = [], []
        for _ in range(size):
            degraded, sharp, radius = self.sample(patch, self.spec.blur.heavy_max)
            cells = (patch // MAP_STRIDE, patch // MAP_STRIDE)
            labels = cv2.resize(radius, cells, interpolation=cv2.INTER_AREA)
            gx = cv2.Sobel(sharp, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(sharp, cv2.CV_32F, 0, 1, ksize=3)
            texture = cv2.resize(np.sqrt(gx * gx + gy * gy) / 8.0, cells, interpolation=cv2.INTER_AREA)
            weights = np.where(texture > FLAT_SOURCE, 1.0, FLAT_CELL_WEIGHT)
            crops.append(degraded)
            targets.append(np.stack([labels, weights], axis=-1))
        return np.stack(crops)[..., None], np.stack(targets).astype(np.float32)

    def severity(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """A classifier batch with classes drawn evenly (a few redraws until a crop lands in its class)."""
        crops, labels = [], []
        for wanted in self.rng.integers(0, len(SEVERITY_LABELS), size):
            max_radius = CLASS_MAX_RADIUS.get(SEVERITY_LABELS[wanted], self.spec.blur.heavy_max)
            for _ in range(TRIES):
                degraded, sharp, radius = self.sample(self.spec.classifier_crop, max_radius)
                label = self.label(sharp, radius)
                if label == wanted:
                    break
            crops.append(degraded)
            labels.append(label)
        return np.stack(crops)[..., None], np.array(labels)
