"""Spatially varying defocus of a photograph under a random depth layout, with occlusion at layer edges.

A single photo has no depth, so we invent one: a background (flat, or a ramp such as a ground plane) and a
few foreground objects (organic blobs, boxes, straight edges of walls or poles), each at its own nearness,
and a focal plane at a random nearness so that some of the frame is usually sharp. The signed blur radius is
proportional to the distance from the focal plane in dioptres (thin lens): `scale * (focus - nearness)`.

Rendering works in linear light, back to front: each layer is blurred with its own PSF and alpha-composited
over what lies behind, its alpha blurred too, so a sharp foreground edge stays sharp over a blurred background
and a blurred foreground spills softly over a sharp one. A layer's colour is the normalised blur of its
*visible* pixels, so a blurred background does not smear the foreground's colour into itself. Ramps are
blurred at a ladder of radii and blended per pixel (gather). Besides the image, `render` returns the
per-pixel blur radius of the visible surface: the ground truth a blur-map classifier is trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import cv2
import numpy as np

from deblurd.optics.lens_psf import IDEAL_LENS, LensProfile, lens_psf_rgb
from deblurd.optics.sensor import SensorProfile, capture, srgb_to_linear

ShapeKind = Literal["blob", "box", "edge"]
_SEEN = 1e-3
"""Blurred visibility below which a layer's colour falls back to a coarse fill (it is hidden there anyway)."""


@dataclass(frozen=True)
class Layer:
    """One depth layer: its coverage (HxW in [0, 1], also where hidden) and signed radius (scalar or HxW)."""

    alpha: np.ndarray
    radius: float | np.ndarray


@dataclass(frozen=True)
class SceneObject:
    """A foreground object, in coordinates relative to the frame (0..1) so a layout fits any size."""

    kind: ShapeKind
    cy: float
    cx: float
    size: float
    angle: float
    nearness: float
    seed: int

    def alpha(self, height: int, width: int) -> np.ndarray:
        """Antialiased coverage: a signed distance in pixels mapped to [0, 1] over about one pixel."""
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        u = (xx - self.cx * width) * math.cos(self.angle) + (yy - self.cy * height) * math.sin(self.angle)
        v = -(xx - self.cx * width) * math.sin(self.angle) + (yy - self.cy * height) * math.cos(self.angle)
        extent = self.size * min(height, width)
        if self.kind == "edge":
            sdf = u
        elif self.kind == "box":
            sdf = np.minimum(extent - np.abs(u), 0.6 * extent - np.abs(v))
        else:
            rng = np.random.default_rng(self.seed)
            wobble = cv2.resize(rng.normal(0, 0.18, (6, 6)).astype(np.float32), (width, height),
                                interpolation=cv2.INTER_CUBIC)
            rho = np.sqrt((u / extent) ** 2 + (v / (0.7 * extent)) ** 2)
            sdf = (1.0 - rho + wobble) * extent
        return np.clip(0.5 + sdf, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class SceneLayout:
    """A random depth layout: background nearness (with a tilt per frame height / width), objects, focus."""

    background: float
    tilt: tuple[float, float]
    objects: tuple[SceneObject, ...]
    focus: float
    scale: float
    """Blur radius in pixels per unit of nearness away from the focal plane."""
    highlights: float = 1.0
    """Linear gain on the photo's saturated pixels: real highlights are brighter than the white they were clipped
    to, and their bokeh balls show it. In focus they clip back to white, so the in-focus region is unchanged."""

    @staticmethod
    def draw(rng: np.random.Generator, max_radius: float = 20.0) -> SceneLayout:
        """Background far away (often a ground-plane or wall ramp), 0-3 nearer objects, the focus anywhere."""
        background = float(rng.uniform(0.0, 0.4))
        tilt = (float(rng.uniform(0.1, 0.5)), float(rng.uniform(-0.15, 0.15))) if rng.random() < 0.5 else (0.0, 0.0)
        objects = tuple(
            SceneObject(cast(ShapeKind, str(rng.choice(["blob", "blob", "box", "edge"]))),
                        float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.12, 0.45)),
                        float(rng.uniform(0, math.pi)), float(rng.uniform(background + 0.1, 1.0)),
                        int(rng.integers(2**31)))
            for _ in range(int(rng.integers(0, 4))))
        objects = tuple(sorted(objects, key=lambda o: o.nearness))
        nears = [background] + [o.nearness for o in objects]
        # Most photos focus on something: an object or the background; the rest anywhere in the depth range.
        focus = float(rng.choice(nears)) if rng.random() < 0.6 else float(rng.uniform(0.0, 1.0))
        reach = (abs(tilt[0]) + abs(tilt[1])) / 2
        span = max(abs(focus - n) for n in nears + [background + reach, max(0.0, background - reach)])
        target = float(math.exp(rng.uniform(math.log(1.0), math.log(max_radius))))
        highlights = float(math.exp(rng.uniform(0.0, math.log(8.0))))
        return SceneLayout(background, tilt, objects, focus, target / max(span, 0.05), highlights)

    def light(self, linear: np.ndarray) -> np.ndarray:
        """The scene's light: the photo in linear light with its clipped highlights restored to their gain."""
        return np.where(linear >= 0.99, linear * self.highlights, linear).astype(np.float32)

    def layers(self, height: int, width: int) -> list[Layer]:
        """Back-to-front layers at this frame size (the background covers the whole frame)."""
        ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
        xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
        if self.tilt == (0.0, 0.0):
            back: float | np.ndarray = self.scale * (self.focus - self.background)
        else:
            # Nearness stops at 0 (infinity): a tilted plane that runs past it becomes a sky at infinity.
            near = np.maximum(0.0, self.background + self.tilt[0] * ys + self.tilt[1] * xs)
            back = self.scale * (self.focus - near)
        layers = [Layer(np.ones((height, width), np.float32), back)]
        for o in self.objects:
            layers.append(Layer(o.alpha(height, width), self.scale * (self.focus - o.nearness)))
        return layers


def radius_ladder(lo: float, hi: float) -> np.ndarray:
    """Signed radii at which a ramp is blurred: 0.5 px apart near focus, 20% apart further out."""
    steps = [0.0]
    while steps[-1] < max(abs(lo), abs(hi)):
        steps.append(steps[-1] + max(0.5, 0.2 * steps[-1]))
    ladder = np.array(sorted({-s for s in steps} | set(steps)), np.float32)
    first = max(0, int(np.searchsorted(ladder, lo, side="right")) - 1)
    last = int(np.searchsorted(ladder, hi, side="left"))
    return ladder[first : last + 1]


def render(linear: np.ndarray, layers: Sequence[Layer], lens: LensProfile = IDEAL_LENS,
           field: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Defocus a linear-light RGB image (HxWx3 float) under back-to-front layers.

    Returns the blurred image (float32, linear) and the per-pixel absolute radius of the visible layer. field
    is where this image sits in the frame (for the cat's eye), one PSF shape for the whole image.
    """
    image = linear.astype(np.float32)
    height, width = image.shape[:2]
    radius_map: np.ndarray = np.zeros((height, width), np.float32)
    in_front: np.ndarray = np.ones((height, width), np.float32)
    visibles = []
    for layer in reversed(layers):
        visibles.append(layer.alpha * in_front)
        radius_map += visibles[-1] * np.abs(layer.radius)
        in_front = in_front * (1.0 - layer.alpha)
    visibles.reverse()
    fill = _coarse_fill(image)
    out = np.zeros_like(image)
    for layer, visible in zip(layers, visibles):
        stack = np.dstack([image * visible[..., None], visible, layer.alpha])
        blurred = _blur_layer(stack, layer.radius, lens, field)
        seen = blurred[..., 3:4]
        weight = np.clip(seen / _SEEN, 0.0, 1.0)
        colour = weight * blurred[..., :3] / np.maximum(seen, 1e-12) + (1.0 - weight) * fill
        coverage = np.clip(blurred[..., 4:5], 0.0, 1.0)
        out = colour * coverage + out * (1.0 - coverage)
    return np.clip(out, 0.0, None), radius_map


def _coarse_fill(image: np.ndarray) -> np.ndarray:
    """A heavily smoothed copy: the colour of a hidden region that a blurred layer edge reveals."""
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // 16), max(1, height // 16)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 2.0), (width, height), interpolation=cv2.INTER_LINEAR)


def _blur_layer(stack: np.ndarray, radius: float | np.ndarray, lens: LensProfile,
                field: tuple[float, float]) -> np.ndarray:
    """Blur [colour * visible (3), visible, alpha] at one radius, or a per-pixel radius by gathering a ladder."""
    out = np.zeros_like(stack)
    support = _box(stack[..., 4] > 0)
    if support is None:
        return out
    if np.isscalar(radius) or np.ndim(radius) == 0:
        reach = max(p.shape[0] for p in lens_psf_rgb(float(radius), lens, field)) // 2
        box = _grow(support, reach, stack.shape)
        out[box] = _convolve_box(stack, float(radius), lens, field, box)
        return out
    radius = np.asarray(radius)
    ladder = radius_ladder(float(radius.min()), float(radius.max()))
    # Gathered output reaches beyond the layer's own pixels by its widest PSF (its blurred alpha spreads there).
    reach = max(p.shape[0] for r in (ladder[0], ladder[-1]) for p in lens_psf_rgb(float(r), lens, field)) // 2
    support = _grow(support, reach, stack.shape)
    position = np.interp(radius, ladder, np.arange(len(ladder))).astype(np.float32)
    row_lo, row_hi = position.min(axis=1), position.max(axis=1)
    col_lo, col_hi = position.min(axis=0), position.max(axis=0)
    for k, level in enumerate(ladder):
        # The rows and columns where this level's hat (1 at k, 0 at k +- 1) is non-zero: a band for a ramp.
        rows = np.flatnonzero((row_lo < k + 1) & (row_hi > k - 1))
        cols = np.flatnonzero((col_lo < k + 1) & (col_hi > k - 1))
        if rows.size == 0 or cols.size == 0:
            continue
        box = (slice(max(rows[0], support[0].start), min(rows[-1] + 1, support[0].stop)),
               slice(max(cols[0], support[1].start), min(cols[-1] + 1, support[1].stop)))
        if box[0].start >= box[0].stop or box[1].start >= box[1].stop:
            continue
        hat = np.clip(1.0 - np.abs(position[box] - k), 0.0, 1.0)
        out[box] += hat[..., None] * _convolve_box(stack, float(level), lens, field, box)
    return out


def _box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The bounding box of a mask's true pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if rows.size else None


def _grow(box: tuple[slice, slice], reach: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    return (slice(max(0, box[0].start - reach), min(shape[0], box[0].stop + reach)),
            slice(max(0, box[1].start - reach), min(shape[1], box[1].stop + reach)))


def _convolve_box(stack: np.ndarray, radius: float, lens: LensProfile, field: tuple[float, float],
                  box: tuple[slice, slice]) -> np.ndarray:
    """Per-channel convolution of the stack, computed for the output box only (reading the PSF's reach around it).

    Reflection at the image border is as for the whole image: the read window only ends early at that border.
    """
    psfs = lens_psf_rgb(radius, lens, field)
    window = _grow(box, max(p.shape[0] for p in psfs) // 2, stack.shape)
    part = stack[window]
    groups = [(psfs[0], [0]), (psfs[1], [1, 3, 4]), (psfs[2], [2])]
    if psfs[0] is psfs[1] is psfs[2]:
        groups = [(psfs[1], [0, 1, 2, 3, 4])]
    result = np.empty_like(part)
    for psf, channels in groups:
        src = np.ascontiguousarray(part[..., channels])
        if psf.shape != (1, 1):
            src = cv2.filter2D(src, -1, np.ascontiguousarray(psf[::-1, ::-1]), borderType=cv2.BORDER_REFLECT101)
        result[..., channels] = src.reshape(src.shape[:2] + (len(channels),))
    y, x = box[0].start - window[0].start, box[1].start - window[1].start
    return result[y : y + box[0].stop - box[0].start, x : x + box[1].stop - box[1].start]


@dataclass(frozen=True)
class Degraded:
    """A synthesised sample: the camera's output (sRGB float in [0, 1]), the per-pixel blur radius (the blur map's
    truth) and the draws that made them. The restorer's target is the photo that went in."""

    image: np.ndarray
    radius: np.ndarray
    layout: SceneLayout
    lens: LensProfile
    sensor: SensorProfile


def degrade(photo: np.ndarray, rng: np.random.Generator, max_radius: float = 20.0,
            field: tuple[float, float] | None = None) -> Degraded:
    """Draw a layout, lens and sensor and push an sRGB photo (HxWx3 float in [0, 1]) through all three.

    field is where the photo sits in the frame (-1..1 per axis; None: drawn at random, as a training crop).
    """
    layout, lens, sensor = SceneLayout.draw(rng, max_radius), LensProfile.draw(rng), SensorProfile.draw(rng)
    where = field if field is not None else (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
    linear, radius = render(layout.light(srgb_to_linear(photo)), layout.layers(*photo.shape[:2]), lens, where)
    return Degraded(capture(linear, sensor, rng), radius, layout, lens, sensor)
