"""Where a frame is blurred, and how much: the pack's classifier mapped over the frame at the working scale.

A real lens blurs a scene by depth: an in-focus subject stays sharp while the background is defocused, so one label
per frame either leaves the background blurred or runs a generator over the subject. The map scores every small
cell of the frame, and the Router restores each region on its own route.

The photo pack's classifier is a dense map model: one fully convolutional pass scores every 8x8 cell with about
250 px of context, so a flat cell (sky, a wall), which looks the same sharp or blurred, takes the verdict of the
surface around it. A crop classifier (the digit packs) scores overlapping tiles instead; there each tile's scores
are weighted by how much texture it has and smoothed by normalised convolution, so flat tiles take the verdict of
their textured neighbours, or the sharp prior (pass-through) when there are none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from deblurd.frames import SEVERITY_LABELS, Severity, SeverityLabel
from deblurd.optics.blur import BlurDefinition
from deblurd.restore import radius_map
from deblurd.restore.inference import Classifier, resize_to, working_size
from deblurd.restore.tiling import blend_window, reflect_pad, tile_starts

MAP_OVERLAP = 32
"""Overlap of neighbouring classifier tiles, in pixels at the working scale (35 tiles on a 640x480 frame)."""
FLAT_GRADIENT = 0.002
"""Mean gradient magnitude (on [0, 1] luminance, per pixel) at or below which a tile is flat: sensor noise alone."""
WHOLE_FRAME_PX = 640 * 512
"""A dense map model maps a frame up to this many pixels (working scale) in one pass, with no tile overlap to pay
for and context across the whole frame; larger images (a still's scales) go in overlapping tiles."""
MIN_REGION_PX = 48
"""A dense map's blurred area that no square of this side (px at the working scale) fits in is passed through."""
FLAT_CONTEXT_PX = 64
"""A dense map's cell is passed through when no cell within this many pixels (working scale) has texture."""
TEXTURED_FRACTION = 0.8
"""A tile with this fraction of the frame's 90th-percentile texture counts fully as evidence; below, its weight
falls with the square of its texture (the classifier was trained on textured crops only)."""
SHARP_PRIOR = 0.05
"""Weight of the pass-through prior in the smoothing: it decides only where no textured tile is near."""
MIN_ROUTE_WEIGHT = 0.2
"""A generator's blend weight below this is set to 0, so that sharp regions come back exactly as they went in."""
SHARP_MARGIN = 0.1
"""Where the map's sharp probability leads the blurred classes' by this much, the region is passed through
exactly; the routes fade in over twice this margin, so seams stay soft."""
MIN_RESTORED_SHARE = 0.1
"""A frame is labelled sharp (and passed through whole) unless at least this share of it is restored."""
MAP_LETTERS = "smh"
"""One letter per class in SEVERITY_LABELS order (sharp, semi = medium, heavy) for the sidecar's grid."""
MAP_STEP = 8
"""A crop classifier's blended map is kept at 1/MAP_STEP of the working scale: a 128 px tile is 16 cells."""
PRIOR_FLOOR = 0.25
"""Weight a lens-profile prior leaves to the classes other than the one it expects: strong evidence in the map
(a part of the scene off the calibrated plane) still wins."""
RECORD_CELL = 32
"""Square size, px at the working scale, of the map the sidecar records (20 x 15 letters for a 640x480 frame)."""
_SMOOTH = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]).astype(np.float32)


@dataclass(frozen=True)
class BlurMap:
    """Class probabilities on a grid of cells at the working scale, and the frame-level verdict derived from them."""

    cells: np.ndarray
    """rows x cols x classes on a grid of `cell` px at the working scale (covering it), each summing to 1, in
    SEVERITY_LABELS order."""
    cell: int
    work_shape: tuple[int, int]
    model: str
    prior: SeverityLabel | None = None
    """The class the lens profile expects at the current LensPosition, when the map was steered by it."""
    radius: np.ndarray | None = None
    """A radius mapper's defocus radius per cell (px at the working scale, the lens prior blended in); None for a
    class mapper (no radius is made up from class probabilities)."""
    confidence: np.ndarray | None = None
    """The radius mapper's confidence per cell in [0, 1]; 0 where the pass-through rules overrode it."""
    bands: BlurDefinition | None = None
    """The bands that routed the radius (the manifest's blur), for the record."""

    def radius_pixels(self, shape: tuple[int, int]) -> np.ndarray | None:
        """The radius map at an HxW image's pixels (px at the working scale), or None for a class map."""
        return None if self.radius is None else radius_map.to_pixels(self.radius, shape)

    def with_prior(self, expected: SeverityLabel) -> BlurMap:
        """The map steered by the lens profile: each cell's scores times 1 for the expected class and PRIOR_FLOOR
        for the others, renormalised (Bayes' rule with the profile's expectation as the prior)."""
        weights = np.array([1.0 if name == expected else PRIOR_FLOOR for name in SEVERITY_LABELS], np.float32)
        cells = self.cells * weights
        return replace(self, cells=cells / cells.sum(axis=-1, keepdims=True), prior=expected)

    def shares(self) -> dict[str, float]:
        """Share of the frame's area routed to each class."""
        total = self.cells.sum(axis=(0, 1))
        return {n: round(float(v / total.sum()), 4) for n, v in zip(SEVERITY_LABELS, total)}

    def label(self) -> SeverityLabel:
        """The map's own verdict: sharp (no weights at all) unless enough of the frame scores blurred, else the
        larger of the semi and heavy shares. A result's label is what its route restored (frames.route_label)."""
        shares = self.shares()
        if shares["semi"] + shares["heavy"] < MIN_RESTORED_SHARE:
            return "sharp"
        return "semi" if shares["semi"] >= shares["heavy"] else "heavy"

    def weights(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """Per-pixel blend weights of the semi and heavy routes for an image of `shape` (HxW); the rest of each
        pixel is the input. Regions the map calls sharp (by SHARP_MARGIN) and weights under MIN_ROUTE_WEIGHT get
        0, so in-focus regions come back exactly; a sharp frame gets no weights at all."""
        if self.label() == "sharp":
            return {}
        pixel = cv2.resize(self.cells, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        blurred = pixel[:, :, 1:].sum(axis=-1)
        gate = np.clip(0.5 + (blurred - pixel[:, :, 0]) / (2 * SHARP_MARGIN), 0.0, 1.0)
        out: dict[str, np.ndarray] = {}
        for index, name in enumerate(SEVERITY_LABELS[1:], start=1):
            w = pixel[:, :, index] * gate
            w[w < MIN_ROUTE_WEIGHT] = 0.0
            if w.any():
                out[name] = w
        return out

    def severity(self, restored: dict[str, float]) -> Severity:
        """The frame's Severity: what its route `restored` (router.py decides), scored by the map's area shares,
        with the map recorded for the sidecar."""
        return Severity(self.shares(), self.model, self.record(), restored)

    def record(self) -> dict[str, Any]:
        """The map for the sidecar: a class letter per RECORD_CELL square of the working-scale frame (rows top to
        bottom), with the square size and the offsets of its rows and columns."""
        rows, cols = (-(-n // RECORD_CELL) for n in self.work_shape)
        pooled = cv2.resize(self.cells, (cols, rows), interpolation=cv2.INTER_AREA)
        letters = np.array(list(MAP_LETTERS))[pooled.reshape(rows, cols, -1).argmax(axis=-1)]
        radius = ({} if self.radius is None or self.confidence is None or self.bands is None
                  else radius_map.record(self.radius, self.confidence, self.bands, (rows, cols)))
        return {"rows": ["".join(r) for r in letters], "legend": dict(zip(MAP_LETTERS, SEVERITY_LABELS)),
                "tile_px": RECORD_CELL,
                "starts": {"y": [RECORD_CELL * i for i in range(rows)], "x": [RECORD_CELL * j for j in range(cols)]},
                "working_size": [self.work_shape[1], self.work_shape[0]],
                **({"lens_prior": self.prior} if self.prior else {}), **radius}


class BlurMapper:
    """Runs a pack's classifier over a frame and builds its BlurMap.

    Two kinds of classifier: a dense map model (4-D output: scores per cell of its input tile), run over
    overlapping tiles whose cell scores are blended; or a crop classifier (one score per crop), run over
    overlapping MAP_OVERLAP tiles whose scores are weighted by texture, smoothed and blended onto MAP_STEP cells.
    """

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.tile = classifier.tile
        self.stride = classifier.stride if classifier.dense else MAP_STEP

    def map(self, luma: np.ndarray, expected: float | None = None) -> BlurMap:
        """The blur map of a luminance image (float32 in [0, 1], any size), steered by the blur the lens profile
        `expected` (radius px at the working scale), when given: a radius map blends it in by confidence before
        routing, a class map takes its class as the prior (BlurMap.with_prior)."""
        work = resize_to(luma, working_size(luma.shape, self.classifier.working_width))
        if self.classifier.output == "radius":
            return self._radius(work, expected)
        cells = self._dense(self._dense_scores(work), work) if self.classifier.dense else self._crops(work)
        blur_map = BlurMap(cells, self.stride, work.shape, self.classifier.model_id)
        return blur_map if expected is None else blur_map.with_prior(self.classifier.blur.label(expected))

    def _dense(self, cells: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Cell scores with textureless cells and small blurred patches passed through."""
        cells = flat_to_sharp(cells, work, self.stride)
        return drop_islands(cells, MIN_REGION_PX // self.stride)

    def _radius(self, work: np.ndarray, expected: float | None) -> BlurMap:
        """A radius mapper's map: radius and confidence per cell (the prior blended in), routed by the manifest's
        bands, then the pass-through rules; a cell they pass through keeps its radius with confidence 0."""
        radius, confidence = radius_map.measured(self._dense_scores(work), self.classifier.radius_scale, expected)
        routed = radius_map.route_cells(radius, self.classifier.blur)
        cells = self._dense(routed, work)
        confidence[(cells[..., 0] == 1.0) & (routed[..., 0] != 1.0)] = 0.0
        prior = None if expected is None else self.classifier.blur.label(expected)
        return BlurMap(cells, self.stride, work.shape, self.classifier.model_id, prior,
                       radius, confidence, self.classifier.blur)

    def _dense_scores(self, work: np.ndarray) -> np.ndarray:
        """The dense model's cell scores: in one pass for a frame up to WHOLE_FRAME_PX, else over tiles overlapping
        by the manifest's overlap, blended with raised-cosine windows; the frame is mirror-padded at its bottom and
        right to whole cells (and tiles)."""
        h, w = work.shape
        cells = (-(-h // self.stride), -(-w // self.stride))
        if h * w <= WHOLE_FRAME_PX:
            padded = np.pad(work, ((0, cells[0] * self.stride - h), (0, cells[1] * self.stride - w)), mode="symmetric")
            return self.classifier.scores(padded)[:cells[0], :cells[1]]
        ph, pw = (max(self.tile, n * self.stride) for n in cells)
        padded = np.pad(work, ((0, ph - h), (0, pw - w)), mode="symmetric")
        cell_tile, cell_overlap = self.tile // self.stride, self.classifier.overlap // self.stride
        window = np.outer(blend_window(cell_tile, cell_overlap), blend_window(cell_tile, cell_overlap))[:, :, None]
        acc = np.zeros((ph // self.stride, pw // self.stride, self.classifier.channels), np.float32)
        weight = np.zeros(acc.shape[:2] + (1,), np.float32)
        for y in tile_starts(ph, self.tile, self.classifier.overlap):
            for x in tile_starts(pw, self.tile, self.classifier.overlap):
                scores = self.classifier.scores(np.ascontiguousarray(padded[y:y + self.tile, x:x + self.tile]))
                cy, cx = y // self.stride, x // self.stride
                acc[cy:cy + cell_tile, cx:cx + cell_tile] += window * scores
                weight[cy:cy + cell_tile, cx:cx + cell_tile] += window
        return (acc / weight)[:cells[0], :cells[1]]

    def _crops(self, work: np.ndarray) -> np.ndarray:
        """Cell scores from the crop classifier: tile scores weighted by texture, smoothed, blended onto cells."""
        padded, _ = reflect_pad(work, self.tile, self.tile)
        ys = tuple(tile_starts(padded.shape[0], self.tile, MAP_OVERLAP))
        xs = tuple(tile_starts(padded.shape[1], self.tile, MAP_OVERLAP))
        crops = [padded[y:y + self.tile, x:x + self.tile] for y in ys for x in xs]
        raw = np.stack([self.classifier.scores(c) for c in crops]).reshape(len(ys), len(xs), -1)
        confidence = texture_confidence(np.array([mean_gradient(c) for c in crops]).reshape(len(ys), len(xs)))
        return blend_tiles(smooth(raw, confidence), (ys, xs), self.tile, work.shape)


def blend_tiles(scores: np.ndarray, starts: tuple[tuple[int, ...], tuple[int, ...]], tile: int,
                work_shape: tuple[int, int]) -> np.ndarray:
    """Per-tile scores blended onto MAP_STEP cells with the raised-cosine windows the restorers use."""
    step = MAP_STEP
    cells = tile // step
    h = -(-max(work_shape[0], tile) // step)
    w = -(-max(work_shape[1], tile) // step)
    acc = np.zeros((h, w, scores.shape[-1]), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    window = np.outer(blend_window(cells, MAP_OVERLAP // step), blend_window(cells, MAP_OVERLAP // step))[:, :, None]
    for i, y in enumerate(starts[0]):
        for j, x in enumerate(starts[1]):
            y0, x0 = min(-(-y // step), h - cells), min(-(-x // step), w - cells)
            acc[y0:y0 + cells, x0:x0 + cells] += window * scores[i, j]
            weight[y0:y0 + cells, x0:x0 + cells] += window
    return (acc / weight)[:-(-work_shape[0] // step), :-(-work_shape[1] // step)]


def flat_to_sharp(cells: np.ndarray, work: np.ndarray, stride: int) -> np.ndarray:
    """Cells with no texture within FLAT_CONTEXT_PX of them (a lens cap, a blank wall, the middle of a clear sky)
    get the sharp class: nothing there shows blur, so the map has no evidence, and passing them through exactly
    is what the pack promises. (The dense mapper learnt flat cells from their textured surroundings only.)"""
    gx = cv2.Sobel(work, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(work, cv2.CV_32F, 0, 1, ksize=3)
    rows, cols = cells.shape[:2]
    per_cell = (cv2.resize(cv2.magnitude(gx, gy), (cols, rows),
                           interpolation=cv2.INTER_AREA) / 8.0).astype(np.float32)  # cell means
    reach = 2 * (FLAT_CONTEXT_PX // stride) + 1
    near = cv2.dilate(per_cell, np.ones((reach, reach), np.uint8))
    out = cells.copy()
    out[near <= FLAT_GRADIENT] = np.eye(len(SEVERITY_LABELS), dtype=np.float32)[0]
    return out


def drop_islands(cells: np.ndarray, min_side: int) -> np.ndarray:
    """Cells that could get a route's weight (blurred within SHARP_MARGIN of sharp) and that no min_side x min_side
    square of such cells covers get the sharp class (a morphological opening of the blurred area): defocus comes in
    regions (a background, a near object), so a small island or a thin strand of blur inside a sharp area is more
    likely a smooth patch of the subject that the map mistook, and passing it through cannot make it worse."""
    if min_side <= 1:
        return cells
    blurred = (cells[..., 1:].sum(axis=-1) > cells[..., 0] - SHARP_MARGIN).astype(np.uint8)  # any route weight
    kept = cv2.morphologyEx(blurred, cv2.MORPH_OPEN, np.ones((min_side, min_side), np.uint8),
                            borderType=cv2.BORDER_REPLICATE)
    out = cells.copy()
    out[(blurred == 1) & (kept == 0)] = np.eye(len(SEVERITY_LABELS), dtype=np.float32)[0]
    return out


def mean_gradient(tile: np.ndarray) -> float:
    """Mean gradient magnitude per pixel (Sobel, normalised to a unit step)."""
    gx = cv2.Sobel(tile, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(tile, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.sqrt(gx * gx + gy * gy).mean() / 8.0)


def texture_confidence(gradient: np.ndarray) -> np.ndarray:
    """0 for flat tiles, rising (quadratically) to 1 at TEXTURED_FRACTION of the frame's 90th-percentile texture."""
    full = max(TEXTURED_FRACTION * float(np.percentile(gradient, 90)), 2 * FLAT_GRADIENT)
    return (np.clip((gradient - FLAT_GRADIENT) / (full - FLAT_GRADIENT), 0.0, 1.0) ** 2).astype(np.float32)


def smooth(scores: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Normalised convolution of the tile scores weighted by confidence, with a weak pass-through prior."""
    prior = np.zeros(scores.shape[-1], np.float32)
    prior[0] = 1.0
    weighted = np.stack([cv2.filter2D(scores[:, :, k] * confidence, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
                         for k in range(scores.shape[-1])], axis=-1)
    mass = cv2.filter2D(confidence, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)[:, :, None]
    return ((weighted + SHARP_PRIOR * prior) / (mass + SHARP_PRIOR)).astype(np.float32)
