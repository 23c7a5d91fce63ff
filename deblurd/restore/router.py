"""Where each part of a frame goes: passed through untouched (sharp) or restored by the generator of its blur class.

The blur map decides per region and the routes are blended with its weights, so an in-focus subject comes back
exactly as it went in while its defocused background is restored. A forced route (benchmarks, tests) sends the
whole frame down one route whatever the map says, so nothing needs to patch the classifier. Stills large enough
go up the coarse-to-fine cascade (cascade.py) instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from deblurd.frames import SEVERITY_LABELS, Severity, SeverityLabel
from deblurd.restore.blur_map import BlurMap, BlurMapper
from deblurd.restore.cascade import StillRestorer
from deblurd.restore.inference import ModelPack, merge_luma, split_luma


def restored_shares(weights: dict[str, np.ndarray]) -> dict[str, float]:
    """Each generator that changes a pixel, with the share of the frame it restores (its mean weight)."""
    return {label: round(float(w.mean()), 4) for label, w in weights.items() if w.any()}


class FrameRouter(Protocol):
    """What the daemon needs from a router: Router, or a stand-in without models (the loop's tests)."""

    def route(self, rgb: np.ndarray, timings: dict[str, float] | None = None) -> tuple[Severity, np.ndarray]:
        """A continuous frame's Severity (what the route did) and result (the very same array when it passed
        through)."""
        ...

    def route_still(self, rgb: np.ndarray, timings: dict[str, float] | None = None,
                    progress: Callable[[float], None] | None = None) -> tuple[Severity, np.ndarray]:
        """A button still's verdict and result, at its own resolution (`progress` hears the share done)."""
        ...

    def expect(self, radius_px: float | None) -> None:
        """Steer by the blur the lens profile expects (px at the working width), or stop steering (None)."""
        ...


class Router:
    """Routes frames of one pack; `forced` sends every whole frame down that route. A FrameRouter."""

    def __init__(self, pack: ModelPack, forced: SeverityLabel | None = None) -> None:
        if forced is not None and forced not in SEVERITY_LABELS:
            raise ValueError(f"forced route must be one of {', '.join(SEVERITY_LABELS)}, got {forced!r}")
        self.pack = pack
        self.forced = forced
        self.mapper = BlurMapper(pack.classifier)
        self.expected: SeverityLabel | None = None
        """The class of the blur the lens profile expects (what a class map is steered by)."""
        self.expected_radius: float | None = None
        """That blur's radius, px at the working width (what a radius map blends in by confidence)."""
        self.stills = StillRestorer(pack, self)

    def expect(self, radius_px: float | None) -> None:
        """Steer the blur map by the blur the lens profile expects (radius in px at the pack's working width), or
        stop steering it (None)."""
        self.expected_radius = radius_px
        self.expected = None if radius_px is None else self.pack.manifest.blur.label(radius_px)

    def plan(self, luma: np.ndarray) -> tuple[Severity, dict[str, np.ndarray], np.ndarray | None]:
        """The per-pixel weight of each generator route (none: pass the frame through), the Severity that follows
        from them (the one place a result's label and pass-through are decided) and, from a radius map, the radius
        per pixel (px at the working scale) that non-blind generators are told."""
        blur_map: BlurMap = self.mapper.map(luma, self.expected_radius)
        if self.forced is None:
            weights = blur_map.weights(luma.shape)
        else:
            weights = {} if self.forced == "sharp" else {self.forced: np.ones(luma.shape, np.float32)}
        radius = blur_map.radius_pixels(luma.shape) if weights else None
        return blur_map.severity(restored_shares(weights)), weights, radius

    def decide(self, luma: np.ndarray) -> tuple[Severity, dict[str, np.ndarray]]:
        """Router.plan without the radius."""
        severity, weights, _ = self.plan(luma)
        return severity, weights

    def restore(self, luma: np.ndarray, label: str, radius: np.ndarray | None = None) -> np.ndarray:
        """The whole of a luminance image on the route of `label`: the same array for sharp. A non-blind generator
        is told `radius` (px at the working scale, per pixel), or the map's when none is given."""
        if label == "sharp":
            return luma
        restorer = self.pack.restorers[label]
        if restorer.needs_radius and radius is None:
            radius = self.mapper.map(luma, self.expected_radius).radius_pixels(luma.shape)
        return restorer.restore(luma, radius)

    def blend(self, luma: np.ndarray, weights: dict[str, np.ndarray], radius: np.ndarray | None = None) -> np.ndarray:
        """Each route's restoration where its weight is, the input elsewhere."""
        out = luma.copy()
        for label, w in weights.items():
            out += w * (self.restore(luma, label, radius) - luma)
        return out

    def route_luma(self, luma: np.ndarray) -> tuple[Severity, np.ndarray]:
        """Map and restore luminance alone (float32 in [0, 1]): what the evaluation scores."""
        severity, weights, radius = self.plan(luma)
        return severity, self.blend(luma, weights, radius) if weights else luma

    def route(self, rgb: np.ndarray, timings: dict[str, float] | None = None) -> tuple[Severity, np.ndarray]:
        """Map an RGB frame and restore its blurred regions' luminance; pixels no route touches come back exactly,
        and a frame with no blurred region comes back as the very same array."""
        t0 = time.perf_counter()
        luma, ycrcb = split_luma(rgb)
        severity, weights, radius = self.plan(luma)
        t1 = time.perf_counter()
        out = rgb
        if weights:
            out = merge_luma(self.blend(luma, weights, radius), ycrcb)
            untouched = sum(weights.values()) == 0
            out[untouched] = rgb[untouched]
        if timings is not None:
            timings["classify_s"] = round(t1 - t0, 4)
            timings["restore_s"] = round(time.perf_counter() - t1, 4)
        return severity, out

    def route_still(self, rgb: np.ndarray, timings: dict[str, float] | None = None,
                    progress: Callable[[float], None] | None = None) -> tuple[Severity, np.ndarray]:
        """A full-resolution still through the cascade (StillRestorer.route: small images and forced routes come
        back here)."""
        return self.stills.route(rgb, timings, progress=progress)
