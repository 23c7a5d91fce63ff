"""A picture of a blur map: the image with each square of the map tinted by its route, for `deblurd deblur --save-map`
and the gallery; a radius map (its record has `radius_px`) is tinted by radius on a colour ramp instead, the more
strongly the more confident the map, with the manifest's bands marked on the ramp's legend. Drawn from the map's
sidecar record, so a map can be shown again from the output folder alone.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from deblurd.output.palette import COLOURS

TINT = 0.35
RAMP_PX = (200, 14)
"""Width and height of the radius legend's colour ramp."""


def radius_colours(radius: np.ndarray, top: float) -> np.ndarray:
    """RGB per radius (px): the TURBO ramp from 0 (blue) to `top` (red), clipped."""
    levels = np.clip(np.asarray(radius, np.float32) / top * 255.0, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels.reshape(-1, 1), cv2.COLORMAP_TURBO)[:, 0, ::-1].reshape(levels.shape + (3,))


def render(rgb: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """The image (RGB uint8) tinted square by square with its class (or radius), and a legend."""
    if "radius_px" in record:
        return _render_radius(rgb, record)
    h, w = rgb.shape[:2]
    work_w, work_h = record["working_size"]
    sx, sy = w / work_w, h / work_h
    tile = record["tile_px"]
    tint = np.zeros_like(rgb, dtype=np.float32)
    count = np.zeros((h, w, 1), np.float32)
    for i, y in enumerate(record["starts"]["y"]):
        for j, x in enumerate(record["starts"]["x"]):
            box = (int(round(x * sx)), int(round(y * sy)), int(round((x + tile) * sx)), int(round((y + tile) * sy)))
            tint[box[1]:box[3], box[0]:box[2]] += COLOURS[record["legend"][record["rows"][i][j]]]
            count[box[1]:box[3], box[0]:box[2]] += 1
    tint /= np.maximum(count, 1)
    out = np.clip((1 - TINT) * rgb + TINT * tint, 0, 255).astype(np.uint8)
    for k, name in enumerate(record["legend"].values()):
        y = 8 + 18 * k
        cv2.rectangle(out, (8, y), (22, y + 14), COLOURS[name], -1)
        cv2.putText(out, name, (28, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _render_radius(rgb: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """The image tinted by each square's radius (TINT times its confidence, at least a third of it), with a ramp
    legend whose ticks mark the bands' edges (sharp_max, semi_max) in px."""
    h, w = rgb.shape[:2]
    bands = record["bands"]
    top = float(bands["heavy_max"])
    radius = np.asarray(record["radius_px"], np.float32)
    alpha = TINT * np.clip(np.asarray(record["confidence"], np.float32), 1.0 / 3.0, 1.0)
    colours = cv2.resize(radius_colours(radius, top).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    weight = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_NEAREST)[:, :, None]
    out = np.clip((1 - weight) * rgb + weight * colours, 0, 255).astype(np.uint8)
    (rw, rh), x0, y0 = RAMP_PX, 8, 8
    out[y0:y0 + rh, x0:x0 + rw] = radius_colours(np.tile(np.linspace(0, top, rw), (rh, 1)), top)
    for name in ("sharp_max", "semi_max"):
        x = x0 + int(round(rw * float(bands[name]) / top))
        cv2.line(out, (x, y0 - 3), (x, y0 + rh + 3), (255, 255, 255), 1)
        cv2.putText(out, f"{bands[name]:g}", (x - 4, y0 + rh + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
    cv2.putText(out, f"radius px (0-{top:g})", (x0 + rw + 6, y0 + rh - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out
