"""Defocus point-spread functions of a real lens rather than the ideal disk of `deblurd.optics.blur.disk_psf`.

A phone lens wide open departs from the ideal disk in ways a restorer must have seen in training:

- spherical aberration moves light towards the rim of the blur disk on one side of focus and towards its
  centre on the other (bright "soap-bubble" bokeh in front, soft bokeh behind for the usual under-corrected
  lens), so the rim term flips sign with the sign of the defocus;
- longitudinal chromatic aberration gives each colour a slightly different blur radius;
- towards the frame corners the lens barrel clips the aperture into a cat's eye pointing at the centre.

Radii are signed: positive behind the focal plane (farther than focus), negative in front. Radius 0 is the
identity in every channel, so an in-focus region passes unchanged (what the "never worse" target measures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from deblurd.optics.blur import gaussian_psf

_SUPERSAMPLE = 8
SOFT_SHARE = 0.7
"""Share of drawn lenses whose light moves to the centre behind focus (soft backgrounds); the rest get bright rims."""
SOFT_RIM = (-0.5, 0.2)
"""The rim term of a soft-background lens, uniform in this range."""
BRIGHT_RIM = (0.2, 0.9)
"""The rim term of a bright-rim lens, uniform in this range."""
SOFTEN_MAX = 0.6
"""The largest edge softening a drawn lens gets, px (uniform from 0)."""
CATS_EYE_SHARE = 0.5
"""Share of drawn lenses whose aperture is clipped towards the corners."""
CATS_EYE = (0.2, 0.9)
"""The clipping of those lenses, uniform in this range."""


@dataclass(frozen=True)
class LensProfile:
    """How one lens departs from the ideal disk; the defaults are the ideal disk."""

    rim: float = 0.0
    """-1..1: light moved to the rim (>0) or the centre (<0) of the disk behind focus; mirrored in front."""
    soften: float = 0.0
    """Gaussian softening of the disk edge in pixels (residual aberrations, sensor MTF); fades out near focus."""
    chroma: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Relative radius change per channel (R, G, B): longitudinal chromatic aberration."""
    cats_eye: float = 0.0
    """0..1: how strongly the aperture is clipped at the frame corners (vignetting)."""

    def __post_init__(self) -> None:
        if not -1.0 <= self.rim <= 1.0:
            raise ValueError(f"rim must be in [-1, 1], got {self.rim}")
        if self.soften < 0 or not 0 <= self.cats_eye <= 1 or any(abs(c) >= 0.5 for c in self.chroma):
            raise ValueError(f"soften >= 0, cats_eye in [0, 1] and |chroma| < 0.5 required: {self}")

    @staticmethod
    def draw(rng: np.random.Generator) -> LensProfile:
        """A random, plausible wide-open phone lens: mostly soft backgrounds, sometimes bright rims, mild colour."""
        rim = float(rng.uniform(*SOFT_RIM) if rng.random() < SOFT_SHARE else rng.uniform(*BRIGHT_RIM))
        red, blue = float(rng.uniform(0.0, 0.06)), float(rng.uniform(0.0, 0.06))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        cats_eye = float(rng.uniform(*CATS_EYE)) if rng.random() < CATS_EYE_SHARE else 0.0
        return LensProfile(rim, float(rng.uniform(0.0, SOFTEN_MAX)), (sign * red, 0.0, -sign * blue), cats_eye)


IDEAL_LENS = LensProfile()


def channel_radius(radius: float, lens: LensProfile, channel: int) -> float:
    """The signed radius one colour channel (0 R, 1 G, 2 B) sees for the green channel's radius."""
    return radius * (1.0 + lens.chroma[channel])


def lens_psf(radius: float, lens: LensProfile = IDEAL_LENS, field: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Normalised, centred PSF for a signed defocus radius (pixels) at a field position.

    field is (y, x) of the image point relative to the frame centre, -1..1 on each axis; it only matters for
    the cat's eye. The result is cached and read-only (ramps reuse the same few radii many times).
    """
    fy, fx = field
    return _lens_psf(round(float(radius), 3), lens, round(float(fy), 2), round(float(fx), 2))


def lens_psf_rgb(radius: float, lens: LensProfile = IDEAL_LENS,
                 field: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three channels' PSFs (R, G, B) for the green channel's signed radius."""
    red, green, blue = (lens_psf(channel_radius(radius, lens, c), lens, field) for c in range(3))
    return red, green, blue


@lru_cache(maxsize=512)
def _lens_psf(radius: float, lens: LensProfile, fy: float, fx: float) -> np.ndarray:
    r = abs(radius)
    if r < 1.0 / _SUPERSAMPLE:
        point: np.ndarray = np.ones((1, 1), np.float32)
        point.flags.writeable = False
        return point
    soften = lens.soften * min(1.0, r)
    half = int(math.ceil(r + 3 * soften))
    n = (2 * half + 1) * _SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / _SUPERSAMPLE - (half + 0.5)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    rho2 = (xx**2 + yy**2) / r**2
    # 3 rho^4 - 1 averages to zero over the disk, so the rim term moves light rather than adding it; a strong
    # centre-weighted profile reaches zero before the edge (clipped), which is how a soft ball looks.
    rim = lens.rim if radius > 0 else -lens.rim
    weight = np.where(rho2 <= 1.0, np.maximum(0.0, 1.0 + rim * (3.0 * rho2**2 - 1.0)), 0.0)
    field_norm = math.hypot(fy, fx)
    if lens.cats_eye > 0 and field_norm > 0:
        # The aperture seen from off-axis: the pupil cut by a second disk of the same size, shifted along the
        # radial direction; both are shifted by half the offset so the cat's eye stays centred on the pixel.
        shift = 1.2 * lens.cats_eye * min(1.0, field_norm / math.sqrt(2.0)) * r / 2
        uy, ux = fy / field_norm, fx / field_norm
        for sign in (1.0, -1.0):
            weight = np.where((yy - sign * shift * uy) ** 2 + (xx - sign * shift * ux) ** 2 <= r**2, weight, 0.0)
    psf = weight.reshape(2 * half + 1, _SUPERSAMPLE, 2 * half + 1, _SUPERSAMPLE).mean(axis=(1, 3))
    if soften > 0:
        psf = cv2.filter2D(psf, -1, gaussian_psf(soften).astype(np.float64), borderType=cv2.BORDER_CONSTANT)
    psf = (psf / psf.sum()).astype(np.float32)
    psf.flags.writeable = False
    return psf
