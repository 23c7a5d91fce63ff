"""The stills cascade: full-resolution images restored where their detail lives, in bounded memory.

Defocus blur in pixels grows with resolution: a background 2 px soft at the 640 px working width is 14 px soft on a
4608 px still, and a softness of 3 px at 100 % is under half a pixel at 640, where it reads as sharp. Restoring at
the working width and upsampling the correction leaves 100 % detail as it was. So a still goes up a cascade of
scales (the working width, twice it, four times ..., then the full width). At each scale below the full width the
blur map is made of what the coarser scales left, each region goes to the generator of its blur class there (the
map's weights, so an in-focus subject is untouched), and the correction is carried up to the next scale, whose own
input supplies the finer detail (a Laplacian-pyramid sum): blur that falls inside the generators' trained band at
some scale is restored there, and what that leaves at each finer one. At the full width the semi generator restores
what the upsampled correction leaves, with the weights the scale below applied (FINEST_ROUTE). A still no scale
finds blurred comes back as the very same array.

Memory: the full-resolution planes held are the RGB input, an 8-bit luminance plane and the RGB result; each scale
is mapped in bands of rows and restored in blocks, and only the previous scale's correction is kept whole (a quarter of
the pixels at most, float32).

The Router sends stills here (Router.route_still) and the cascade hands back to it what it does not climb (small
images, forced routes), so this module knows the Router by its type only. The daemon's stills queue and spool live
in deblurd/daemon.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from deblurd.frames import SEVERITY_LABELS, Severity, route_label
from deblurd.restore.blur_map import BlurMapper
from deblurd.restore.inference import ModelPack

if TYPE_CHECKING:
    from deblurd.restore.router import Router

SCALE_STEP = 2
"""Each scale of the cascade is this much wider than the one below it."""
LAST_STEP_MIN = 1.4
"""The full width follows the last doubling only when it is at least this much wider (no near-duplicate scale)."""
STILL_MIN_RATIO = 2.0
"""An image more than this many times the working width goes through the cascade; smaller ones through the Router."""
MAP_BAND_ROWS = 1024
"""Most rows one blur map covers (plus MAP_CONTEXT above and below): bounds the float planes a map needs."""
MAP_CONTEXT = 96
"""Rows of context a band's map sees beyond the rows it decides."""
BLOCK_TILES = (2, 4)
"""Generator tiles per restored block's height and width (blocks overlap as tiles do, so they cost about as many
tiles as the whole image would, and hold a few float planes of a block, not of the image)."""
FINEST_ROUTE = "semi"
"""The full width is not mapped again: where the scale below restored, what its upsampled correction leaves is
about a pixel of blur at full width, inside the semi band, so the semi generator restores it with the weights the
scale below applied (measured against mapping the full width: better by 0.6-0.7 dB and 2-3x faster). A radius pack
maps the full width instead ("map"): its generators are told the radius where they run, and only a map at that scale
measures it (radius in px grows with the width)."""


def uses_still_path(shape: tuple[int, ...], working_width: int | None) -> bool:
    """Whether an HxW(x3) image is large enough for the cascade (more than STILL_MIN_RATIO x the working width)."""
    return working_width is not None and shape[1] > STILL_MIN_RATIO * working_width


def scale_widths(width: int, working_width: int) -> list[int]:
    """Widths of the cascade's scales, coarse to fine: the working width, doubling, then the full width."""
    if width <= working_width:
        return [width]
    widths = [working_width]
    while widths[-1] * SCALE_STEP * LAST_STEP_MIN <= width:
        widths.append(widths[-1] * SCALE_STEP)
    return widths + [width]


Box = tuple[int, int, int, int]
"""Rows [y0, y1) and columns [x0, x1) of an image."""


def upsample_box(plane: np.ndarray, shape: tuple[int, int], box: Box,
                 interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """A box of `plane` resized to `shape` (HxW), computed for that box only (pixel centres aligned as cv2.resize
    aligns them)."""
    y0, y1, x0, x1 = box
    sy, sx = plane.shape[0] / shape[0], plane.shape[1] / shape[1]
    matrix = np.array([[sx, 0, (x0 + 0.5) * sx - 0.5], [0, sy, (y0 + 0.5) * sy - 0.5]], np.float32)
    return cv2.warpAffine(plane, matrix, (x1 - x0, y1 - y0), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def band_views(cells: dict[str, np.ndarray], radius: np.ndarray | None, band: tuple[int, int], top: int,
               ) -> tuple[Callable[[Box], dict[str, np.ndarray]], Callable[[Box], np.ndarray] | None]:
    """A band's weight planes and radius map (HxW `band`, starting at row `top` of its scale) as functions of a box
    of the scale: each plane upsampled to that box only."""
    def in_band(plane: np.ndarray, box: Box) -> np.ndarray:
        return upsample_box(plane, band, (box[0] - top, box[1] - top, box[2], box[3]), cv2.INTER_LINEAR)

    def weights(box: Box) -> dict[str, np.ndarray]:
        return {label: in_band(c, box) for label, c in cells.items()}

    if radius is None:
        return weights, None
    return weights, lambda box: in_band(radius, box)


def spans(length: int, most: int) -> Iterator[tuple[int, int]]:
    """[start, stop) spans of equal size (at most `most`) covering [0, length)."""
    count = -(-length // most)
    edges = [round(i * length / count) for i in range(count + 1)]
    return zip(edges[:-1], edges[1:])


@dataclass
class Scale:
    """One scale of the cascade: the still's luminance at this size (8-bit), the correction carried up from the
    scale below (float32 at that scale's size; None where nothing below was restored) and, when kept, the blend
    weight this scale's generators applied (8-bit), which the full width's pass reuses."""

    base: np.ndarray
    below: np.ndarray | None
    applied: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.base.shape

    def box(self, box: Box) -> np.ndarray:
        """This scale's estimate for a box: its own input plus the correction from below, in [0, 1]."""
        y0, y1, x0, x1 = box
        x = self.base[y0:y1, x0:x1].astype(np.float32) / 255.0
        if self.below is not None:
            x += upsample_box(self.below, self.shape, box)
            np.clip(x, 0.0, 1.0, out=x)
        return x


@dataclass
class ScaleReport:
    """What the blur map found at one scale, for the sidecar: its width, label, route shares and restored shares
    (area-weighted over its bands)."""

    width: int
    shares: dict[str, float]
    restored: dict[str, float]

    @property
    def label(self) -> str:
        return route_label(self.restored)


class _Done:
    """The share of a still's cascade restored so far (pixels of every scale's blocks), handed to a callback."""

    def __init__(self, callback: Callable[[float], None] | None, total: int) -> None:
        self.callback = callback
        self.total = max(total, 1)
        self.pixels = 0

    def counting(self, sink: Callable[[Box, np.ndarray], None]) -> Callable[[Box, np.ndarray], None]:
        """`sink`, also counting each block it takes (or `sink` itself when no one asks)."""
        if self.callback is None:
            return sink
        callback = self.callback

        def counted(box: Box, estimate: np.ndarray) -> None:
            sink(box, estimate)
            self.pixels += (box[1] - box[0]) * (box[3] - box[2])
            callback(min(self.pixels / self.total, 1.0))
        return counted


class StillRestorer:
    """Restores full-resolution stills of one pack through the coarse-to-fine cascade; `router` (of the same pack)
    takes what the cascade does not climb and steers its working-width map."""

    def __init__(self, pack: ModelPack, router: Router, finest: str | None = FINEST_ROUTE) -> None:
        self.pack = pack
        self.router = router
        self.finest = "map" if finest == FINEST_ROUTE and pack.classifier.output == "radius" else finest
        """The full width's pass: a generator given the weights the scale below applied (FINEST_ROUTE), "map" to
        map the full width like the others, or None for the correction from below alone (the alternatives the
        evaluation compares)."""
        self.working_width = pack.classifier.working_width
        self._mappers: dict[int, BlurMapper] = {}
        _, self.tile, _, _ = next(iter(pack.restorers.values())).model.input_shape
        self.overlap = next(iter(pack.restorers.values())).overlap

    def _mapper(self, width: int) -> BlurMapper:
        """A blur mapper that maps luminance of this width as it is (the pack's classifier, its working width
        set to the scale's width so nothing is resized)."""
        if width not in self._mappers:
            classifier = copy.copy(self.pack.classifier)
            classifier.working_width = width
            self._mappers[width] = BlurMapper(classifier)
        return self._mappers[width]

    def route(self, rgb: np.ndarray, timings: dict[str, float] | None = None,
              progress: Callable[[float], None] | None = None) -> tuple[Severity, np.ndarray]:
        """Map and restore an RGB still (uint8) at full resolution; a still no scale finds blurred comes back as the
        very same array. Timings (when given) get classify_s and restore_s, as Router.route sets them; `progress`
        (when given) gets the share of the cascade's blocks done after each block (`deblurd deblur`'s bar). An image
        within STILL_MIN_RATIO of the working width, a router with a forced route, or a pack whose working width is
        narrower than its generators' tile (the digit packs: no photo scale to climb from) goes through the
        Router."""
        if (self.router.forced is not None or (self.working_width or 0) < self.tile
                or not uses_still_path(rgb.shape, self.working_width)):
            return self.router.route(rgb, timings)
        clock = {"classify_s": 0.0, "restore_s": 0.0}
        h, w = rgb.shape[:2]
        luma = np.empty((h, w), np.uint8)
        for y0, y1 in spans(h, MAP_BAND_ROWS):
            luma[y0:y1] = cv2.cvtColor(rgb[y0:y1], cv2.COLOR_RGB2YCrCb)[:, :, 0]
        widths = scale_widths(w, self.working_width or w)
        done = _Done(progress, sum(round(h * width / w) * width for width in widths))
        carried: np.ndarray | None = None
        applied: np.ndarray | None = None
        reports: list[ScaleReport] = []
        first_map: dict[str, Any] | None = None
        for index, width in enumerate(widths[:-1]):
            base = cv2.resize(luma, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
            scale = Scale(base, carried, np.zeros(base.shape, np.uint8))
            correction = np.empty(base.shape, np.float32)
            prior = self.router.expected_radius if index == 0 else None  # the profile knows it at the working width
            sink = done.counting(self._correction_sink(base, correction))
            restored, report, record = self._map_scale(scale, width, sink, clock, prior)
            reports.append(report)
            first_map = first_map or record
            if restored or carried is not None:
                carried = correction
            applied = scale.applied
        top = Scale(luma, carried)
        if carried is None and self.finest != "map":
            return self._finish(reports, first_map, timings, clock), rgb
        out = np.empty_like(rgb)
        sink = done.counting(self._rgb_sink(rgb, luma, out))
        if self.finest == "map":
            _, report, record = self._map_scale(top, w, sink, clock)
            reports.append(report)
            first_map = first_map or record
        else:
            t0 = time.perf_counter()
            weights = {} if self.finest is None or applied is None else {self.finest: applied}
            self._restore_rows(top, (0, h), lambda box: {
                label: upsample_box(plane, luma.shape, box, cv2.INTER_LINEAR) / 255.0
                for label, plane in weights.items()}, sink)
            clock["restore_s"] += time.perf_counter() - t0
        return self._finish(reports, first_map, timings, clock), out

    def _finish(self, reports: list[ScaleReport], record: dict[str, Any] | None,
                timings: dict[str, float] | None, clock: dict[str, float]) -> Severity:
        """The still's Severity, with the stage times handed to `timings`."""
        if timings is not None:
            timings.update({k: round(v, 4) for k, v in clock.items()})
        return self._severity(reports, record)

    def _map_scale(self, scale: Scale, width: int, sink: Callable[[Box, np.ndarray], None],
                   clock: dict[str, float], prior: float | None = None,
                   ) -> tuple[bool, ScaleReport, dict[str, Any] | None]:
        """Map one scale band by band (steered by the lens profile's expected radius, when given) and restore each
        band in blocks, non-blind generators told the band's radius map; every pixel goes to `sink` (restored or
        not). Returns whether anything was restored, the scale's report and its first band's map record."""
        h, w = scale.shape
        mapper = self._mapper(width)
        area: dict[str, float] = {name: 0.0 for name in SEVERITY_LABELS}
        applied: dict[str, float] = {}
        record = None
        for a, b in spans(h, MAP_BAND_ROWS):
            t0 = time.perf_counter()
            lo, hi = max(0, a - MAP_CONTEXT), min(h, b + MAP_CONTEXT)
            blur_map = mapper.map(scale.box((lo, hi, 0, w)), prior)
            grid = (-(-(hi - lo) // 8), -(-w // 8))
            cells = blur_map.weights(grid)
            radius = blur_map.radius_pixels(grid) if cells else None
            record = record or blur_map.record()
            for name, share in blur_map.shares().items():
                area[name] += share * (b - a)
            t1 = time.perf_counter()
            clock["classify_s"] += t1 - t0
            for name, c in cells.items():
                applied[name] = applied.get(name, 0.0) + float(c.mean()) * (b - a)
            weights, radius_of = band_views(cells, radius, (hi - lo, w), lo)
            self._restore_rows(scale, (a, b), weights, sink, radius_of)
            clock["restore_s"] += time.perf_counter() - t1
        shares = {name: round(v / h, 4) for name, v in area.items()}
        return bool(applied), ScaleReport(width, shares, {n: round(v / h, 4) for n, v in applied.items()}), record

    def _restore_rows(self, scale: Scale, core: tuple[int, int], weights: Callable[[Box], dict[str, np.ndarray]],
                      sink: Callable[[Box, np.ndarray], None],
                      radius: Callable[[Box], np.ndarray] | None = None) -> None:
        """Restore rows core[0]..core[1] of a scale in blocks, each route blended with its weights for the block;
        each block reads `overlap` pixels beyond its own so its tiles blend as the whole image's would. `radius`
        gives the radius map (px at this scale) of a box, for non-blind generators."""
        h, w = scale.shape
        rows, cols = (self.tile * n - self.overlap * (n + 1) for n in BLOCK_TILES)
        for a, b in spans(core[1] - core[0], rows):
            a, b = a + core[0], b + core[0]
            for c, d in spans(w, cols):
                outer = (max(0, a - self.overlap), min(h, b + self.overlap), max(0, c - self.overlap),
                         min(w, d + self.overlap))
                inner = (slice(a - outer[0], b - outer[0]), slice(c - outer[2], d - outer[2]))
                x = scale.box(outer)
                estimate = x[inner].copy()
                total = np.zeros(estimate.shape, np.float32)
                told = None if radius is None else radius(outer)
                for label, weight in weights((a, b, c, d)).items():
                    if not weight.any():
                        continue
                    restored = np.clip(self.pack.restorers[label].restore_working(x, told)[inner], 0.0, 1.0)
                    estimate += weight * (restored - x[inner])
                    total += weight
                if scale.applied is not None:
                    scale.applied[a:b, c:d] = np.round(np.clip(total, 0.0, 1.0) * 255.0)
                sink((a, b, c, d), estimate)

    @staticmethod
    def _correction_sink(base: np.ndarray, plane: np.ndarray) -> Callable[[Box, np.ndarray], None]:
        """Blocks of a coarser scale's estimate kept as the correction to its input, carried up to the next scale."""
        def sink(box: Box, estimate: np.ndarray) -> None:
            a, b, c, d = box
            plane[a:b, c:d] = estimate - base[a:b, c:d].astype(np.float32) / 255.0
        return sink

    @staticmethod
    def _rgb_sink(rgb: np.ndarray, luma: np.ndarray, out: np.ndarray) -> Callable[[Box, np.ndarray], None]:
        """Blocks of the full-resolution estimate written into the RGB result with the input's chroma; pixels
        nothing corrected are copied exactly (a YCrCb round trip is not)."""
        def sink(box: Box, estimate: np.ndarray) -> None:
            a, b, c, d = box
            y = np.round(np.clip(estimate, 0.0, 1.0) * 255.0).astype(np.uint8)
            untouched = y == luma[a:b, c:d]
            ycrcb = cv2.cvtColor(rgb[a:b, c:d], cv2.COLOR_RGB2YCrCb)
            ycrcb[:, :, 0] = y
            block = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
            block[untouched] = rgb[a:b, c:d][untouched]
            out[a:b, c:d] = block
        return sink

    def _severity(self, reports: list[ScaleReport], record: dict[str, Any] | None) -> Severity:
        """The still's verdict: what the scale with the most severe label restored, with its shares; the sidecar's
        map is the working-scale map plus one line per scale."""
        order: dict[str, int] = {name: i for i, name in enumerate(SEVERITY_LABELS)}
        worst = max(reports, key=lambda r: (order[r.label], r.width))
        scales = [{"width": r.width, "label": r.label, "shares": r.shares} for r in reports]
        return Severity(worst.shares, self.pack.classifier.model_id, {**(record or {}), "scales": scales},
                        worst.restored)
