"""How good is a non-blind generator's Wiener channel before any network refines it? On the realistic synthesis
(layered depth, lens PSFs that are not disks, the camera's ISP and JPEG), per radius range: the input, the channel
as the daemon builds it today (a disk of the tile's median radius, deblurd/restore/radius_map.generator_input) and
a per-pixel alternative (a bank of disk Wiener filters blended by each pixel's radius), each told the radius as a
mapper would report it (tools/data/synth.told_radius) or the true one, at several noise levels.

    python -m tools.eval.wiener_channel --samples 48        # validation photos; prints a Markdown table
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from deblurd.optics.wiener import wiener_disk
from tools.data.realistic import RealisticSource
from tools.data.synth import told_radius

BANK_STEP_PX = 0.5
SIGMAS_255 = (2, 4, 6)
RANGES = {"semi (radius <= 3.4)": 3.4, "heavy (radius <= 16)": 16.0}


def tile_median(luma: np.ndarray, radius: np.ndarray, sigma: float) -> np.ndarray:
    return wiener_disk(luma, float(np.median(radius)), sigma)


def per_pixel(luma: np.ndarray, radius: np.ndarray, sigma: float) -> np.ndarray:
    """Disk Wiener at radii 0, BANK_STEP_PX, ... up to the largest radius, linearly blended per pixel."""
    radii = np.arange(0.0, float(radius.max()) + 2 * BANK_STEP_PX, BANK_STEP_PX)
    bank = np.stack([wiener_disk(luma, float(r), sigma) for r in radii])
    index = np.clip(radius / BANK_STEP_PX, 0, len(radii) - 1)
    low = np.minimum(np.floor(index).astype(int), len(radii) - 2)
    frac = index - low
    rows, cols = np.indices(luma.shape)
    return (1 - frac) * bank[low, rows, cols] + frac * bank[low + 1, rows, cols]


CHANNELS: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "tile median (today)": tile_median, "per pixel": per_pixel}


def evaluate(samples: int, patch: int, seed: int) -> dict[str, dict[str, float]]:
    """Mean PSNR per radius range and row over `samples` validation patches."""
    table: dict[str, dict[str, float]] = {}
    for name, max_radius in RANGES.items():
        source, rng = RealisticSource("photo", "validation", seed), np.random.default_rng(seed)
        scores: dict[str, list[float]] = {}
        for _ in range(samples):
            degraded, sharp, radius = source.sample(patch, max_radius)
            told = told_radius(radius, rng)
            scores.setdefault("input", []).append(peak_signal_noise_ratio(sharp, degraded, data_range=1.0))
            for channel, make in CHANNELS.items():
                for sigma in SIGMAS_255:
                    for which, r in (("told", told), ("true", radius)):
                        out = np.clip(make(degraded, r, sigma / 255), 0, 1)
                        scores.setdefault(f"{channel}, {which} radius, sigma {sigma}/255", []).append(
                            peak_signal_noise_ratio(sharp, out, data_range=1.0))
        table[name] = {row: float(np.mean(v)) for row, v in scores.items()}
    return table


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=48, help="validation patches per radius range")
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args(argv)
    table = evaluate(args.samples, args.patch, args.seed)
    ranges = list(table)
    print("| PSNR dB | " + " | ".join(ranges) + " |\n|---|" + "---|" * len(ranges))
    for row in table[ranges[0]]:
        print(f"| {row} | " + " | ".join(f"{table[r][row]:.2f}" for r in ranges) + " |")


if __name__ == "__main__":
    main()
