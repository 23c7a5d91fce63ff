"""Blur synthesis shared by training, evaluation, the replay samples and lens calibration.

It is the one definition of what "semi" and "heavy" mean: a point-spread function (Gaussian, or a
defocus disk softened by a small Gaussian, optionally smeared by mild motion), then sensor noise
(Poisson shot noise plus Gaussian read noise), 8-bit quantisation and optional JPEG. Everything is
seeded, so the same spec and seed give the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from deblurd.frames import SEVERITY_LABELS, SeverityLabel
from deblurd.optics.sensor import jpeg_roundtrip

PsfKind = Literal["gaussian", "defocus"]
_SUPERSAMPLE = 8


def gaussian_psf(sigma: float) -> np.ndarray:
    """Normalised 2-D Gaussian, 6 sigma wide; sigma 0 is the identity."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return np.ones((1, 1), np.float32)
    half = int(math.ceil(3 * sigma))
    g = cv2.getGaussianKernel(2 * half + 1, sigma, cv2.CV_64F)
    psf = g @ g.T
    return (psf / psf.sum()).astype(np.float32)


def disk_psf(radius: float, soften: float = 0.0) -> np.ndarray:
    """Normalised defocus disk of the given radius (anti-aliased by supersampling), optionally Gaussian-softened."""
    if radius < 0 or soften < 0:
        raise ValueError(f"radius and soften must be >= 0, got {radius}, {soften}")
    if radius < 1.0 / _SUPERSAMPLE:
        return gaussian_psf(soften)
    half = int(math.ceil(radius + 3 * soften)) + 1
    n = (2 * half + 1) * _SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / _SUPERSAMPLE - (half + 0.5)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    psf = inside.reshape(2 * half + 1, _SUPERSAMPLE, 2 * half + 1, _SUPERSAMPLE).mean(axis=(1, 3))
    if soften > 0:
        psf = cv2.filter2D(psf, -1, gaussian_psf(soften).astype(np.float64), borderType=cv2.BORDER_CONSTANT)
    psf = _trim(psf)
    return (psf / psf.sum()).astype(np.float32)


def motion_psf(length: float, angle_deg: float) -> np.ndarray:
    """Normalised straight-line motion blur of the given length in pixels (bilinear splats, exactly centred)."""
    if length <= 0:
        return np.ones((1, 1), np.float32)
    half = int(math.ceil(length / 2)) + 1
    t = np.linspace(-length / 2, length / 2, int(math.ceil(length * 32)) + 1)
    ys = half + t * math.sin(math.radians(angle_deg))
    xs = half + t * math.cos(math.radians(angle_deg))
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    psf = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(psf, (y0 + dy, x0 + dx), w)
    return (psf / psf.sum()).astype(np.float32)


def _trim(psf: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Crop zero margins symmetrically so the PSF stays centred."""
    mask = psf > eps * psf.max()
    rows, cols = np.where(mask.any(axis=1))[0], np.where(mask.any(axis=0))[0]
    h, w = psf.shape
    m = min(rows[0], h - 1 - rows[-1], cols[0], w - 1 - cols[-1])
    return psf[m : h - m, m : w - m] if m > 0 else psf


def convolve(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Convolve a float image (HxW or HxWxC) with a PSF, reflecting at the borders as a lens sees beyond the frame."""
    if psf.shape == (1, 1):
        return image.astype(np.float32, copy=True)
    kernel = np.ascontiguousarray(psf[::-1, ::-1])
    return cv2.filter2D(image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT101)


@dataclass(frozen=True)
class BlurSpec:
    """One degradation: PSF kind and amount (sigma or disk radius, in pixels at the working scale) plus noise."""

    kind: PsfKind
    amount: float
    soften: float = 0.0
    motion_length: float = 0.0
    motion_angle: float = 0.0
    photons: float | None = None
    read_noise: float = 0.0
    quantize: bool = True
    jpeg_quality: int | None = None

    def psf(self) -> np.ndarray:
        base = gaussian_psf(self.amount) if self.kind == "gaussian" else disk_psf(self.amount, self.soften)
        if self.motion_length > 0:
            motion = motion_psf(self.motion_length, self.motion_angle)
            base = _trim(cv2.filter2D(_pad_to(base, motion), -1, motion, borderType=cv2.BORDER_CONSTANT))
            base = base / base.sum()
        return base.astype(np.float32)

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade a float image in [0, 1]; returns float32 in [0, 1]."""
        out = convolve(image, self.psf())
        if self.photons:
            out = rng.poisson(np.clip(out, 0, None) * self.photons) / self.photons
        if self.read_noise > 0:
            out = out + rng.normal(0.0, self.read_noise, out.shape)
        out = np.clip(out, 0.0, 1.0).astype(np.float32)
        if self.jpeg_quality is not None:
            return jpeg_roundtrip(out, self.jpeg_quality)
        if self.quantize:
            out = np.round(out * 255.0) / 255.0
        return out.astype(np.float32)


def _pad_to(psf: np.ndarray, other: np.ndarray) -> np.ndarray:
    ph = max(0, (other.shape[0] - 1) // 2)
    pw = max(0, (other.shape[1] - 1) // 2)
    return np.pad(psf, ((ph, ph), (pw, pw)))


class NoiseModel(BaseModel):
    """Sensor noise at the pack's working scale; photons None means noise-free (the seed papers' protocol)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    photons: float | None = Field(None, gt=0, title="photo-electrons at white (varied 0.5-2x per draw)")
    read_noise: float = Field(0.0, ge=0, title="Gaussian read noise, standard deviation on [0, 1]")
    soften: float = Field(0.0, ge=0, title="Gaussian softening of the defocus disk, in pixels")
    max_motion: float = Field(0.0, ge=0, title="longest straight-line motion smear, in pixels")
    jpeg_probability: float = Field(0.0, ge=0, le=1, title="share of draws that go through JPEG at quality 80-95")

    def spec(self, kind: PsfKind, amount: float, rng: np.random.Generator) -> BlurSpec:
        """Draw one randomised degradation of the given PSF amount."""
        photons = None if self.photons is None else float(self.photons * rng.uniform(0.5, 2.0))
        read = float(self.read_noise * rng.uniform(0.5, 1.5))
        motion = float(rng.uniform(0, self.max_motion)) if self.max_motion > 0 else 0.0
        jpeg = int(rng.integers(80, 96)) if rng.random() < self.jpeg_probability else None
        return BlurSpec(kind, float(amount), self.soften, motion, float(rng.uniform(0, 180)), photons, read, True, jpeg)


class BlurDefinition(BaseModel):
    """A pack's physical blur classes, in pixels at its working scale: up to sharp_max is sharp, then semi, then heavy.

    Generators are trained on slightly overlapping ranges (train_semi, train_heavy) so that a frame near a class
    boundary is handled well by either route. Written into each pack's manifest, which is where it is read from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    psf: PsfKind
    unit: str
    sharp_max: float = Field(ge=0)
    semi_max: float = Field(gt=0)
    heavy_max: float = Field(gt=0)
    train_semi: tuple[float, float]
    train_heavy: tuple[float, float]
    noise: NoiseModel = NoiseModel()

    def class_index(self, amount: np.ndarray) -> np.ndarray:
        """The class of each amount (0 sharp, 1 semi, 2 heavy, as SEVERITY_LABELS): the one place a radius (or
        sigma) becomes a route; a band's upper edge belongs to it."""
        return np.digitize(amount, np.array([self.sharp_max, self.semi_max], np.float64), right=True)

    def label(self, amount: float) -> SeverityLabel:
        return SEVERITY_LABELS[int(self.class_index(np.asarray(amount, np.float64)))]

    def class_range(self, label: str) -> tuple[float, float]:
        return {"sharp": (0.0, self.sharp_max), "semi": (self.sharp_max, self.semi_max),
                "heavy": (self.semi_max, self.heavy_max)}[label]

    def train_range(self, role: str) -> tuple[float, float]:
        return {"semi": self.train_semi, "heavy": self.train_heavy}[role]

    def spec(self, amount: float, rng: np.random.Generator) -> BlurSpec:
        """One randomised degradation of this kind of blur at the given amount, with the pack's noise."""
        return self.noise.spec(self.psf, amount, rng)


PAPER_SWEEP_SIGMAS: tuple[float, ...] = (0, 10, 20, 26, 30, 40, 50)
PAPER_SCALE = 256
"""The seed paper's protocol: images resized to 256x256 and blurred with Gaussian sigma in pixels at that size."""


def paper_upscale(image: np.ndarray, size: int = PAPER_SCALE) -> np.ndarray:
    """The seed protocol's ground truth: a small image resized (bicubic) to size x size, clipped to [0, 1]."""
    return np.clip(cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def paper_blur(image_256: np.ndarray, sigma: float) -> np.ndarray:
    """The seed protocol's input: Gaussian blur of sigma pixels at 256x256, stored as 8-bit."""
    return BlurSpec("gaussian", float(sigma)).apply(image_256, np.random.default_rng(0))


def protocol_matrix(sigma: float, small: int = 28, size: int = PAPER_SCALE) -> np.ndarray:
    """The linear map small -> upscale to size -> Gaussian blur -> area-downscale to small, as one small x small matrix.

    Applying it on both sides (M @ X @ M.T) reproduces the seed protocol at the working scale exactly (before
    clipping and 8-bit rounding), thousands of times faster than blurring at 256x256: training uses it.
    """
    up = cv2.resize(np.eye(small, dtype=np.float64), (small, size), interpolation=cv2.INTER_CUBIC)
    g = gaussian_psf(sigma).astype(np.float64)
    kernel = g.sum(axis=1, keepdims=True)
    blur = cv2.filter2D(np.eye(size, dtype=np.float64), -1, kernel, borderType=cv2.BORDER_REFLECT101)
    down = cv2.resize(np.eye(size, dtype=np.float64), (size, small), interpolation=cv2.INTER_AREA)
    return (down @ blur @ up).astype(np.float32)
