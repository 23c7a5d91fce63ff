"""Render the bundled replay frames (deblurd/samples/): validation photos at the photo pack's working width (4:3)
with known defocus blur.

The blur is drawn with the blur definition in the shipped photo pack's manifest (its class bands and sensor
noise), so the demo's sharp / semi / heavy frames mean what the models were trained on. samples.json records each
frame's blur.

    .venv/bin/python -m tools.figures.samples
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import cv2
import numpy as np

from deblurd.capture.camera import SAMPLES_DIR
from deblurd.config import ModelsConfig
from deblurd.optics.blur import BlurDefinition
from deblurd.restore.manifest import load_manifest
from tools.data.sources import load_rgb, photo_files

MAX_BYTES = 80_000
PLAN = ("sharp", "semi", "heavy", "semi", "heavy", "sharp")
"""Replay order: a mix, so a demo run shows every route within a few frames."""


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to 4:3 and resize to size (width, height)."""
    h, w = image.shape[:2]
    cw, ch = min(w, h * 4 // 3), min(h, w * 3 // 4)
    y, x = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(image[y:y + ch, x:x + cw], size, interpolation=cv2.INTER_AREA)


def _distinct_first(photos: list[Path], rng: np.random.Generator) -> list[Path]:
    """Shuffled, one photo per scene first (aero1/aero3, leuvenA/leuvenB are the same scene), then the rest."""
    seen: set[str] = set()
    first, repeats = [], []
    for photo in (photos[i] for i in rng.permutation(len(photos))):
        scene = re.sub(r"[0-9AB]+$", "", photo.stem)
        (repeats if scene in seen else first).append(photo)
        seen.add(scene)
    return first + repeats


def _amount(bands: BlurDefinition, label: str, rng: np.random.Generator) -> float:
    """A blur amount well inside the class, away from its boundaries."""
    lo, hi = bands.class_range(label)
    return 0.0 if label == "sharp" else float(rng.uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo)))


def _encode(bgr: np.ndarray) -> tuple[bytes, int]:
    for quality in range(90, 40, -5):
        data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
        if len(data) <= MAX_BYTES:
            return data, quality
    raise ValueError("sample does not fit in 80 KB even at JPEG quality 45")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    parser.add_argument("--pack", type=Path, default=ModelsConfig().dir / "photo", help="the pack the frames are for")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    manifest = load_manifest(args.pack)
    if manifest.working_width is None:
        raise SystemExit(f"{args.pack}: the manifest has no working_width, so there is no scale to render at")
    bands, size = manifest.blur, (manifest.working_width, manifest.working_width * 3 // 4)
    rng = np.random.default_rng(args.seed)
    photos = [p for p in photo_files("validation") if min(cv2.imread(str(p)).shape[:2]) >= size[1]]
    chosen = _distinct_first(photos, rng)[:len(PLAN)]
    if len(chosen) < len(PLAN):
        raise SystemExit(f"need {len(PLAN)} validation photos at least {size[0]}x{size[1]}, found {len(chosen)}")
    args.out.mkdir(parents=True, exist_ok=True)
    records = {}
    for i, (label, photo) in enumerate(zip(PLAN, chosen), start=1):
        rgb = _fit(load_rgb(photo), size).astype(np.float32) / 255.0
        amount = _amount(bands, label, rng)
        spec = bands.spec(amount, rng)
        blurred = np.round(spec.apply(rgb, rng) * 255).astype(np.uint8)
        data, quality = _encode(cv2.cvtColor(blurred, cv2.COLOR_RGB2BGR))
        name = f"{i:02d}-{label}.jpg"
        (args.out / name).write_bytes(data)
        records[name] = {"label": label, "source": photo.name, "psf": spec.kind, "radius_px": round(amount, 3),
                         "soften_px": spec.soften, "motion_px": round(spec.motion_length, 3),
                         "photons": spec.photons and round(spec.photons, 1), "read_noise": round(spec.read_noise, 5),
                         "jpeg_quality": quality, "bytes": len(data)}
        print(f"{name}: {label} (disk radius {amount:.2f} px) from {photo.name}, {len(data) // 1000} KB")
    (args.out / "samples.json").write_text(json.dumps(
        {"about": f"replay frames at the {manifest.name} pack's working scale ({size[0]} px wide); blur drawn with "
                  f"the blur definition in its manifest by tools/figures/samples.py",
         "bands": {"sharp_max": bands.sharp_max, "semi_max": bands.semi_max, "heavy_max": bands.heavy_max},
         "frames": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
