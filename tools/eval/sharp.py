"""Sharp stays sharp, blurred is found: what the blur map does to clean photos and to photos blurred all over.

- Clean photos: each validation photo framed as the camera streams it, as is and as a x1.28 digital zoom (the
  frame's centre upscaled bicubic, softer than any lens blur the map should act on), through the whole route
  (Router.route). A photo is altered when any pixel changes; the PSNR of the result against the photo says how
  much (inf: untouched). Smooth regions (sky, walls) and the photo's own bokeh are where a map errs.
- Uniform blur: the same photos blurred all over by a disk (radius 2 semi, 5 heavy) with noise sigma 2/255. The
  whole frame must be routed: the share of the textured area (the clean photo's cells with texture) that the map
  leaves sharp is the miss rate. Flat cells are passed through by design (nothing there shows blur).

    python -m tools.eval.sharp --pack photo          # prints Markdown tables; no image leaves the repo
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from deblurd.config import ModelsConfig
from deblurd.optics.blur import disk_psf
from deblurd.restore.blur_map import FLAT_GRADIENT
from deblurd.restore.inference import ModelPack, rgb_to_luma
from deblurd.restore.router import Router
from tools.data import sources as data
from tools.eval.realistic import RealisticGrid, fit

ZOOM = 1.28
"""A digital zoom: the frame's centre, 1/1.28 as wide and high, upscaled to the frame."""
UNIFORM_RADII = (2.0, 5.0)
NOISE_SIGMA = 2 / 255
CELL_PX = 8
"""Texture is judged per cell of this side, as the map's cells."""


@dataclass(frozen=True)
class CleanRow:
    photo: str
    variant: str
    altered_share: float
    """Share of pixels that differ from the photo in any channel."""
    psnr: float
    """PSNR (dB, RGB) of the result against the photo; inf when untouched."""


@dataclass(frozen=True)
class UniformRow:
    photo: str
    radius: float
    textured_share: float
    """Share of the frame's cells with texture in the clean photo."""
    missed: float
    """Share of those textured cells' pixels the map left sharp (no route weight)."""


def zoomed(rgb: np.ndarray, frame: tuple[int, int], zoom: float = ZOOM) -> np.ndarray:
    """The frame a x`zoom` digital zoom gives: the photo framed as the camera streams it, its centre 1/zoom as wide
    and high cropped and upscaled bicubic back to `frame`."""
    framed = fit(rgb, frame)
    w, h = round(frame[0] / zoom), round(frame[1] / zoom)
    x, y = (frame[0] - w) // 2, (frame[1] - h) // 2
    return cv2.resize(framed[y:y + h, x:x + w], frame, interpolation=cv2.INTER_CUBIC)


def altered_share(before: np.ndarray, after: np.ndarray) -> float:
    """Share of pixels that changed in any channel."""
    return float(np.any(before != after, axis=-1).mean())


def psnr(truth: np.ndarray, result: np.ndarray) -> float:
    """PSNR (dB) over the RGB channels; inf for identical images."""
    return math.inf if np.array_equal(truth, result) else float(peak_signal_noise_ratio(truth, result, data_range=255))


def textured_cells(luma: np.ndarray) -> np.ndarray:
    """Per pixel, whether its CELL_PX cell has texture (mean Sobel gradient above the map's FLAT_GRADIENT)."""
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    h, w = luma.shape
    cells = cv2.resize(cv2.magnitude(gx, gy) / 8.0, (w // CELL_PX, h // CELL_PX), interpolation=cv2.INTER_AREA)
    return cv2.resize((cells > FLAT_GRADIENT).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


def blurred_all_over(rgb: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """The photo blurred by a disk of `radius` px everywhere, with Gaussian noise NOISE_SIGMA, as uint8."""
    blurred = cv2.filter2D(rgb.astype(np.float32) / 255, -1, disk_psf(radius), borderType=cv2.BORDER_REFLECT)
    noisy = blurred + rng.normal(0.0, NOISE_SIGMA, blurred.shape).astype(np.float32)
    return np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8)


def missed_share(router: Router, rgb: np.ndarray, textured: np.ndarray) -> float:
    """Share of the textured pixels the map leaves sharp (no route's weight) in a frame blurred all over."""
    _, weights = router.decide(rgb_to_luma(rgb))
    weight = np.clip(sum(weights.values()), 0.0, 1.0) if weights else np.zeros(textured.shape, np.float32)
    return float((weight[textured] == 0).mean()) if textured.any() else 0.0


def clean_rows(router: Router, photos: Sequence[tuple[str, np.ndarray]], frame: tuple[int, int]) -> Iterator[CleanRow]:
    for name, rgb in photos:
        for variant, image in (("as is", fit(rgb, frame)), (f"x{ZOOM:g} zoom", zoomed(rgb, frame))):
            _, out = router.route(image.copy())
            yield CleanRow(name, variant, altered_share(image, out), psnr(image, out))


def uniform_rows(router: Router, photos: Sequence[tuple[str, np.ndarray]], frame: tuple[int, int],
                 seed: int) -> Iterator[UniformRow]:
    rng = np.random.default_rng(seed)
    for name, rgb in photos:
        clean = fit(rgb, frame)
        textured = textured_cells(rgb_to_luma(clean))
        for radius in UNIFORM_RADII:
            frame_rgb = blurred_all_over(clean, radius, rng)
            yield UniformRow(name, radius, float(textured.mean()), missed_share(router, frame_rgb, textured))


def clean_table(rows: Sequence[CleanRow]) -> str:
    lines = ["| photo | variant | altered pixels | PSNR vs the photo (dB) |", "|---|---|---|---|"]
    lines += [f"| {r.photo} | {r.variant} | {r.altered_share:.1%} | {r.psnr:.2f} |" for r in rows]
    for variant in dict.fromkeys(r.variant for r in rows):
        of = [r for r in rows if r.variant == variant]
        altered = sum(r.altered_share > 0 for r in of)
        worst = min(r.psnr for r in of)
        lines.append(f"| **{variant}: {altered} of {len(of)} altered** | | mean "
                     f"{np.mean([r.altered_share for r in of]):.1%} | worst {worst:.2f} |")
    return "\n".join(lines)


def uniform_table(rows: Sequence[UniformRow]) -> str:
    lines = ["| photo | radius | textured area | textured area left sharp |", "|---|---|---|---|"]
    lines += [f"| {r.photo} | {r.radius:g} | {r.textured_share:.0%} | {r.missed:.2%} |" for r in rows]
    for radius in UNIFORM_RADII:
        of = [r for r in rows if r.radius == radius]
        whole = sum(r.missed == 0 for r in of)
        lines.append(f"| **radius {radius:g}: {whole} of {len(of)} frames wholly routed** | | | mean "
                     f"{np.mean([r.missed for r in of]):.2%}, worst {max(r.missed for r in of):.2%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", default="photo")
    p.add_argument("--precision", default="int8", choices=["int8", "float"])
    p.add_argument("--limit", type=int, default=None, help="at most this many validation photos")
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    router = Router(ModelPack.load(ModelsConfig().dir / args.pack, args.precision, "auto", 2))
    frame = RealisticGrid().frame
    photos = [(path.name, data.load_rgb(path)) for path in data.photo_files("validation")[: args.limit]]
    print(f"## Clean photos through pack {router.pack.manifest.version} ({args.precision}, {frame[0]}x{frame[1]})\n")
    print(clean_table(list(clean_rows(router, photos, frame))))
    print(f"\n## Blurred all over (disk, noise sigma {NOISE_SIGMA * 255:g}/255): the textured area the map misses\n")
    print(uniform_table(list(uniform_rows(router, photos, frame, args.seed))))


if __name__ == "__main__":
    main()
