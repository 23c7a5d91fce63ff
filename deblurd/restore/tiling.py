"""Run a fixed-size model over an image of any size: overlapping tiles, blended with raised-cosine weights.

Memory stays bounded by the tile, and the blend hides the tile seams, so a tiled result matches one
run over the whole image closely.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of `tile` pixels overlapping by at least `overlap`."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    return list(range(0, length - tile, stride)) + [length - tile]


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D weights: a raised-cosine ramp over `overlap` pixels at each end, 1 in the middle, never 0."""
    w = np.ones(tile, np.float32)
    ramp_len = min(overlap, tile // 2)
    if ramp_len > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_len, dtype=np.float32) + 0.5) / ramp_len)
        w[:ramp_len] = ramp
        w[tile - ramp_len:] = ramp[::-1]
    return w


def reflect_pad(image: np.ndarray, min_h: int, min_w: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Mirror-pad the last two axes to at least min_h x min_w, evenly on both sides (edge pixel not repeated, as
    the training synthesis pads); returns the padded array and the (top, left) offset."""
    ph, pw = max(0, min_h - image.shape[-2]), max(0, min_w - image.shape[-1])
    if not ph and not pw:
        return image, (0, 0)
    top, left = ph // 2, pw // 2
    lead = ((0, 0),) * (image.ndim - 2)
    return np.pad(image, lead + ((top, ph - top), (left, pw - left)), mode="reflect"), (top, left)


def run_tiled(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], tile: tuple[int, int],
              overlap: int) -> np.ndarray:
    """Apply `fn` (tile float32 -> HxW) over an image in overlapping tiles and blend the results. The image is HxW, or
    CxHxW whose planes are tiled together (a non-blind generator's luminance and radius map); fn sees CxHxW tiles."""
    th, tw = tile
    h, w = image.shape[-2:]
    padded, (top, left) = reflect_pad(image, th, tw)
    ph, pw = padded.shape[-2:]
    out = np.zeros((ph, pw), np.float32)
    weight = np.zeros((ph, pw), np.float32)
    window = np.outer(blend_window(th, overlap), blend_window(tw, overlap))
    for y in tile_starts(ph, th, overlap):
        for x in tile_starts(pw, tw, overlap):
            result = fn(np.ascontiguousarray(padded[..., y:y + th, x:x + tw]))
            out[y:y + th, x:x + tw] += result * window
            weight[y:y + th, x:x + tw] += window
    return (out / weight)[top:top + h, left:left + w]
