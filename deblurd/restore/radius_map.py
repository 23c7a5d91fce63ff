"""Know the blur: a radius mapper's cells, the lens profile's prior, the routes the bands make of them, the radius
channel and the Wiener channel a non-blind generator is fed, and the radius grid the sidecar records.

A radius mapper (manifest: the classifier's `output` is "radius") gives per cell the defocus radius in px at the
working scale (divided by the manifest's radius_scale) and a confidence in [0, 1]. The manifest's blur bands
(BlurDefinition.class_index) turn radius into the sharp / semi / heavy routes, so the classes are defined once; the
pass-through rules of blur_map.py (flat_to_sharp, drop_islands) then apply as to a class map. A generator that
declares the "radius" input is given the radius map (cells to pixels, same normalisation) on every tile, and one
that declares "wiener" the tile's luminance Wiener-deconvolved with a disk of the tile's median radius.

blur_map.py builds the BlurMap from these pieces; this module knows nothing of it (no import cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from deblurd.frames import SEVERITY_LABELS
from deblurd.optics.blur import BlurDefinition
from deblurd.optics.wiener import wiener_disk

RADIUS_DECIMALS = 1
"""The sidecar records radius in px to one decimal, confidence to two."""


def measured(raw: np.ndarray, radius_scale: float, expected: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(radius px, confidence) per cell from a radius mapper's raw cells (channel 0 radius / radius_scale, channel
    1 confidence). With the lens profile's `expected` radius (px at the working scale) as the prior, each cell's
    radius is the blend confidence * measured + (1 - confidence) * expected: the map wins where it is sure."""
    radius = np.maximum(raw[..., 0], 0.0).astype(np.float32) * np.float32(radius_scale)
    confidence = np.clip(raw[..., 1], 0.0, 1.0).astype(np.float32)
    if expected is not None:
        radius = confidence * radius + (1.0 - confidence) * np.float32(expected)
    return radius, confidence


def route_cells(radius: np.ndarray, blur: BlurDefinition) -> np.ndarray:
    """One-hot class cells (rows x cols x classes, SEVERITY_LABELS order) of a radius map, by the manifest's bands."""
    return np.eye(len(SEVERITY_LABELS), dtype=np.float32)[blur.class_index(radius)]


def to_pixels(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A per-cell plane (radius px) at an HxW image's pixels, interpolated as the route weights are."""
    return cv2.resize(cells, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def generator_input(luma: np.ndarray, radius_px: np.ndarray | None, inputs: Sequence[str], radius_scale: float,
                    wiener_sigma: float) -> np.ndarray:
    """A generator's input (H, W, channels) in the manifest's channel order: luminance, the radius map / radius_scale
    and the Wiener channel (a disk of the median radius; a tile is small enough for one radius). Training builds
    its batches with this too, so the channels mean the same in both."""
    def radius() -> np.ndarray:
        if radius_px is None:
            raise ValueError(f"a generator with inputs {list(inputs)} needs the radius map (a radius pack's mapper)")
        return radius_px

    make = {"luma": lambda: luma,
            "radius": lambda: radius() / np.float32(radius_scale),
            "wiener": lambda: wiener_disk(luma, float(np.median(radius())), wiener_sigma)}
    return np.stack([make[name]().astype(np.float32) for name in inputs], axis=-1)


def record(radius: np.ndarray, confidence: np.ndarray, blur: BlurDefinition, grid: tuple[int, int]) -> dict[str, Any]:
    """The radius map for the sidecar on the record's grid (rows, cols): mean radius (px at the working scale, one
    decimal) and confidence per square, with the bands that routed it."""
    rows, cols = grid
    pooled_r = cv2.resize(radius, (cols, rows), interpolation=cv2.INTER_AREA).reshape(rows, cols)
    pooled_c = cv2.resize(confidence, (cols, rows), interpolation=cv2.INTER_AREA).reshape(rows, cols)
    return {"radius_px": np.round(pooled_r.astype(np.float64), RADIUS_DECIMALS).tolist(),
            "confidence": np.round(pooled_c.astype(np.float64), 2).tolist(),
            "bands": {"sharp_max": blur.sharp_max, "semi_max": blur.semi_max, "heavy_max": blur.heavy_max}}
