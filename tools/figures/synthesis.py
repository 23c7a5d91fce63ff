"""Draw docs/synthesis.png: sample lens PSFs and photo crops through the realistic defocus synthesis.

    python -m tools.figures.synthesis [--out docs/synthesis.png]

Top row: PSFs of deblurd.optics.lens_psf (ideal disk, bright rim behind focus and the same lens in front, colour
fringes, a cat's eye at the frame corner). Below: training-photo crops at 100 % (640-px working width) beside
what deblurd.optics.defocus.degrade makes of them and the per-pixel blur radius it reports. The PNG is palette-
quantised to stay small in the repository.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from deblurd.optics.defocus import degrade  # noqa: E402
from deblurd.optics.lens_psf import LensProfile, lens_psf_rgb  # noqa: E402
from tools.data import sources as data  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CROP = 256
MAX_RADIUS = 20.0
PSFS = (
    ("ideal disk, r 8", 8.0, LensProfile(), (0.0, 0.0)),
    ("bright rim, behind focus", 8.0, LensProfile(rim=0.8, soften=0.3), (0.0, 0.0)),
    ("same lens, in front", -8.0, LensProfile(rim=0.8, soften=0.3), (0.0, 0.0)),
    ("colour: R +8 %, B -8 %", 8.0, LensProfile(chroma=(0.08, 0.0, -0.08)), (0.0, 0.0)),
    ("cat's eye, top-right corner", 8.0, LensProfile(rim=-0.3, soften=0.3, cats_eye=0.9), (-1.0, 1.0)),
)


def _psf_picture(radius: float, lens: LensProfile, field: tuple[float, float], size: int = 21) -> np.ndarray:
    """The three channel PSFs as one RGB picture, each channel padded to size x size, brightest value 1."""
    planes = []
    for psf in lens_psf_rgb(radius, lens, field):
        pad = (size - psf.shape[0]) // 2
        planes.append(np.pad(psf, pad))
    rgb = np.dstack(planes)
    return rgb / rgb.max()


def _crops(count: int) -> list[np.ndarray]:
    """Textured 256-px crops of different training photos at the 640-px working width (RGB, [0, 1])."""
    crops = []
    for path in data.photo_files("train"):
        rgb = data.load_rgb(path)
        scale = 640 / rgb.shape[1]
        rgb = cv2.resize(rgb, (640, round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        if rgb.shape[0] < CROP:
            continue
        y, x = (rgb.shape[0] - CROP) // 2, (640 - CROP) // 2
        crop = rgb[y : y + CROP, x : x + CROP].astype(np.float32) / 255
        if np.abs(np.diff(crop, axis=1)).mean() > 0.03:
            crops.append(crop)
        if len(crops) == count:
            break
    return crops


def _interesting(photo: np.ndarray, seed: int) -> tuple[int, object]:
    """The first draw from seed on whose radius map part of the crop is in focus and part strongly blurred."""
    while True:
        sample = degrade(photo, np.random.default_rng(seed), MAX_RADIUS)
        if (sample.radius < 0.5).mean() > 0.15 and (sample.radius > 5).mean() > 0.2 and sample.layout.objects:
            return seed, sample
        seed += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "synthesis.png")
    parser.add_argument("--rows", type=int, default=3)
    args = parser.parse_args(argv)
    crops = _crops(args.rows)
    fig = plt.figure(figsize=(9.6, 2.2 + 3.3 * len(crops)), dpi=100)
    grid = fig.add_gridspec(1 + len(crops), 15, height_ratios=[0.6] + [1.0] * len(crops))
    for i, (title, radius, lens, field) in enumerate(PSFS):
        ax = fig.add_subplot(grid[0, 3 * i : 3 * i + 3])
        ax.imshow(_psf_picture(radius, lens, field), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    seed = 0
    for row, photo in enumerate(crops, start=1):
        seed, sample = _interesting(photo, seed)
        panels = [(photo, "sharp photo (100 %)"),
                  (sample.image, f"degraded (seed {seed}, gain {sample.sensor.gain:.1f}, "
                                 f"JPEG {sample.sensor.jpeg_quality or '-'})"),
                  (sample.radius, "blur radius map, px")]
        for col, (picture, title) in enumerate(panels):
            ax = fig.add_subplot(grid[row, 5 * col : 5 * col + 5])
            shown = ax.imshow(picture, vmin=0, vmax=MAX_RADIUS, cmap="viridis") if picture.ndim == 2 else ax.imshow(
                np.clip(picture, 0, 1))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
            if picture.ndim == 2:
                fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
        seed += 1
    fig.suptitle("deblurd.optics.defocus: lens PSFs (top) and photos through layered defocus, sensor and ISP",
                 fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    picture = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
