"""How fast the realistic defocus synthesis makes training samples on this CPU (deblurd.optics.defocus.degrade).

    python -m tools.bench.synthesis [--samples 40] [--max-radius 20]

Each sample draws a new layout, lens and sensor, so the figure is an average over the mix training sees; the
lens and sensor stages are timed apart too. Uses the installed training photos when there are any.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from deblurd.optics.defocus import SceneLayout, degrade, render
from deblurd.optics.lens_psf import LensProfile
from deblurd.optics.sensor import SensorProfile, capture, srgb_to_linear
from tools.data import sources as data


def _photos(width: int = 640) -> list[np.ndarray]:
    """Training photos at the working width (RGB, [0, 1]), or a textured stand-in when none are installed."""
    try:
        files = data.photo_files("train")[:8]
    except data.DataMissing:
        rng = np.random.default_rng(0)
        return [cv2.resize(rng.random((60, 80, 3)).astype(np.float32), (width, 480), interpolation=cv2.INTER_CUBIC)]
    photos = []
    for path in files:
        rgb = data.load_rgb(path)
        scale = max(width / rgb.shape[1], 480 / rgb.shape[0])
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        photos.append(rgb.astype(np.float32) / 255)
    return photos


def measure(size: tuple[int, int], samples: int, max_radius: float, seed: int = 0) -> dict[str, float]:
    """Mean milliseconds per sample of height x width: the whole degradation, the lens stage and the sensor."""
    rng = np.random.default_rng(seed)
    photos = _photos()
    height, width = size
    times = {"total": 0.0, "lens": 0.0, "sensor": 0.0}
    for i in range(samples):
        photo = photos[i % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - height + 1), rng.integers(0, photo.shape[1] - width + 1)
        crop = photo[y : y + height, x : x + width]
        start = time.perf_counter()
        degrade(crop, np.random.default_rng(seed + i), max_radius)
        times["total"] += time.perf_counter() - start
        draw = np.random.default_rng(seed + i)
        layout, lens, sensor = SceneLayout.draw(draw, max_radius), LensProfile.draw(draw), SensorProfile.draw(draw)
        start = time.perf_counter()
        linear, _ = render(srgb_to_linear(crop), layout.layers(height, width), lens, (0.5, 0.5))
        times["lens"] += time.perf_counter() - start
        start = time.perf_counter()
        capture(linear, sensor, draw)
        times["sensor"] += time.perf_counter() - start
    return {k: 1000 * v / samples for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--max-radius", type=float, default=20.0)
    args = parser.parse_args(argv)
    print(f"deblurd.optics.defocus.degrade, max radius {args.max_radius:g} px, {args.samples} samples each, "
          f"OpenCV threads {cv2.getNumThreads()}")
    for size in ((256, 256), (480, 640)):
        ms = measure(size, args.samples, args.max_radius)
        print(f"{size[1]}x{size[0]}: {ms['total']:.1f} ms per sample (lens and layers {ms['lens']:.1f} ms, "
              f"sensor and ISP {ms['sensor']:.1f} ms)")


if __name__ == "__main__":
    main()
