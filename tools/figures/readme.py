"""Draw docs/input-vs-restored.png for the README: bundled blurred samples beside their restoration.

Each sample goes through the generator for the blur class it was rendered with (deblurd/samples/samples.json),
so the figure shows what the models do even while the classifier is still being trained. Run it again
whenever a new model pack lands:

    .venv/bin/python -m tools.figures.readme
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from deblurd.capture.camera import SAMPLES_DIR
from deblurd.config import REPO_MODELS_DIR
from deblurd.restore.blur_map import mean_gradient
from deblurd.restore.inference import ModelPack, merge_luma, split_luma
from deblurd.restore.tiling import tile_starts
from tools.data.sources import load_rgb

CROP = (280, 210)
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _label(rgb: np.ndarray, text: str) -> np.ndarray:
    out = rgb.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def most_textured(luma: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of the crop of size (width, height) on a half-overlapping grid with the most texture."""
    w, h = size
    cells = [(y, x) for y in tile_starts(luma.shape[0], h, h // 2) for x in tile_starts(luma.shape[1], w, w // 2)]
    return max(cells, key=lambda c: mean_gradient(luma[c[0]:c[0] + h, c[1]:c[1] + w]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=REPO_MODELS_DIR / "photo")
    parser.add_argument("--out", type=Path, default=DOCS / "input-vs-restored.png")
    args = parser.parse_args()
    pack = ModelPack.load(args.pack, "int8", threads=2)
    frames = json.loads((SAMPLES_DIR / "samples.json").read_text())["frames"]
    rows = []
    for name, info in frames.items():
        if info["label"] == "sharp":
            continue
        rgb = load_rgb(SAMPLES_DIR / name)
        luma, ycrcb = split_luma(rgb)
        restored = merge_luma(pack.restorers[info["label"]].restore(luma), ycrcb)
        y, x = most_textured(luma, CROP)
        crop = (slice(y, y + CROP[1]), slice(x, x + CROP[0]))
        rows.append(np.hstack([_label(rgb[crop], f"input: {info['label']} blur, disk r={info['radius_px']} px"),
                               _label(restored[crop], f"restored: {info['label']} generator")]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows[:2]), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} with pack {pack.manifest.name} v{pack.manifest.version}")


if __name__ == "__main__":
    main()
