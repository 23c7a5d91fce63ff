"""A picture of a blur map: the image with each square of the map tinted by its route, for `deblurd deblur --save-map` and the
gallery. Drawn from the map's sidecar record, so a map can be shown again from the output folder alone.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from deblurd.output.palette import COLOURS

TINT = 0.35


def render(rgb: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """The image (RGB uint8) tinted square by square with its class, and a legend."""
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
    for k, (letter, name) in enumerate(record["legend"].items()):
        y = 8 + 18 * k
        cv2.rectangle(out, (8, y), (22, y + 14), COLOURS[name], -1)
        cv2.putText(out, name, (28, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out
