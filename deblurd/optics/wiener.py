"""Wiener deconvolution given a PSF: a yardstick for every restorer (tools/eval/baselines.py) and the optional front
end of a non-blind generator (its "wiener" input channel, computed per tile from the radius map).

The noise-to-signal ratio comes from the known noise sigma and a natural-image power spectrum (S(f) ~ A / |f|^2, A
fitted to the observation where the blur passes the signal), so nothing is tuned on the image. The image's mirror
extension (2H x 2W) is filtered, periodic without jumps, so the borders do not ring.
"""

from __future__ import annotations

import numpy as np

from deblurd.optics.blur import disk_psf

LOW_BAND = (0.01, 0.06)
"""Radial frequencies (cycles per pixel) where the signal's power-law amplitude A is fitted: above the mean,
below where a disk of radius 8 first attenuates much."""
MIN_BAND_POINTS = 64
"""A disk so large that the blur passes none of LOW_BAND (radius 40 at 640 px, 35 in a 12 MP still) has A fitted
from the lowest frequencies it passes instead, above the two lowest rings; with no band at all, A would be 0 and
the filter would return a flat image."""

MIN_RADIUS = 0.25
"""A disk under a quarter pixel is no blur to invert: wiener_disk returns the image itself."""


def mirror(image: np.ndarray) -> np.ndarray:
    """The image's symmetric extension to 2H x 2W: periodic with no jump at any edge."""
    top = np.concatenate([image, image[:, ::-1]], axis=1)
    return np.concatenate([top, top[::-1]], axis=0)


def otf(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The PSF's transfer function on an rfft2 grid of `shape`, its centre moved to the origin (no shift)."""
    padded = np.zeros(shape, np.float64)
    h, w = psf.shape
    padded[:h, :w] = psf / psf.sum()
    padded = np.roll(padded, (-(h // 2), -(w // 2)), axis=(0, 1))
    return np.fft.rfft2(padded)


def _radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(fy**2 + fx**2)


def wiener(image: np.ndarray, psf: np.ndarray, sigma: float) -> np.ndarray:
    """Wiener deconvolution of a float image in [0, 1] by `psf`, for additive noise of standard deviation `sigma`.

    The filter is H* / (|H|^2 + sigma^2 / S(f)) with S(f) = A / |f|^2 (natural images' spectrum), A the median of
    (|Y|^2 / N - sigma^2) |f|^2 / |H|^2 over LOW_BAND where the blur passes half the signal (lower for a large
    blur, MIN_BAND_POINTS). Returns float32 clipped to [0, 1]."""
    if sigma <= 0:
        raise ValueError(f"wiener needs the noise sigma (> 0), got {sigma}")
    x = mirror(image.astype(np.float64))
    mean = float(x.mean())
    spectrum = np.fft.rfft2(x - mean)
    h = otf(psf.astype(np.float64), x.shape)
    f = _radial_frequency(x.shape)
    passed = np.abs(h) > 0.5
    band = (f >= LOW_BAND[0]) & (f <= LOW_BAND[1]) & passed
    if band.sum() < MIN_BAND_POINTS:
        band = (f >= 2.0 / min(x.shape)) & (f <= LOW_BAND[1]) & passed
    power = np.abs(spectrum[band]) ** 2 / x.size - sigma**2
    amplitude = float(np.median(np.maximum(power, 0.0) * f[band] ** 2 / np.abs(h[band]) ** 2)) if band.any() else 0.0
    nsr = sigma**2 * np.maximum(f, 1.0 / max(x.shape)) ** 2 / max(amplitude, 1e-12)
    restored = np.fft.irfft2(spectrum * np.conj(h) / (np.abs(h) ** 2 + nsr), s=x.shape) + mean
    return np.clip(restored[: image.shape[0], : image.shape[1]], 0.0, 1.0).astype(np.float32)


def wiener_disk(image: np.ndarray, radius: float, sigma: float) -> np.ndarray:
    """Wiener deconvolution by a defocus disk of `radius` px (the image itself, as float32, for a radius under
    MIN_RADIUS: there is nothing to invert)."""
    if radius < MIN_RADIUS:
        return np.clip(image, 0.0, 1.0).astype(np.float32)
    return wiener(image, disk_psf(radius), sigma)
