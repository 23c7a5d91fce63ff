"""measure the lens's blur per LensPosition from `deblurd collect` pairs and write the lens profile

For every pair (the sharp reference and a frame at another LensPosition) and each of 3x3 frame regions, the PSF
radius is found that best turns the reference into the defocused frame: sharp * PSF vs defocused, in linear light,
with a gain and offset per region (exposure), over the PSF family of deblurd.optics.lens_psf. The PSF's shape (rim,
edge softening) is fitted first on the most defocused pairs, its colour (R and B radius against G) after. Then a
thin-lens line, radius = k (1 + g rho^2) x defocus, is fitted through every region's radii, and the profile
(deblurd.optics.lens_profile) is written with its fit quality.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from deblurd.commands.collect import COLLECTION_MANIFEST_NAME
from deblurd.commands.collect import FORMAT as PAIRS_FORMAT
from deblurd.config import load_config
from deblurd.errors import CalibrationError, ExitCode
from deblurd.image_io import read_rgb
from deblurd.optics.lens_profile import (
    SENSOR_WIDTH_PX,
    FitQuality,
    LensCalibration,
    Measurement,
    RegionFit,
    ideal_radius_per_dioptre,
    profile_path,
    save_profile,
)
from deblurd.optics.lens_psf import LensProfile, lens_psf
from deblurd.optics.sensor import srgb_to_linear

GRID = 3
"""Regions per frame axis."""
RIMS = (-0.6, -0.3, 0.0, 0.2, 0.4, 0.6, 0.8)
SOFTENS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.8)
"""Shape candidates (lens_psf.LensProfile rim, and softening in px of a 640 px frame)."""
SHAPE_PAIRS = 4
SHAPE_MIN_RADIUS = 2.0
"""Pairs blurred at least this much (px at 640 px width) show the rim; those between 1 px and this, the softening."""
MEASURE_RADIUS = 6.0
RIM_RADIUS = 12.0
"""Blur (px) a pair is shrunk to for measuring its radius, and for telling the rim (a finer detail) apart."""
MAX_RADIUS_FACTOR = 2.5
"""The radius search reaches this many times the ideal thin lens's radius (a lens far from ideal is still found)."""
IMAGES_KEPT = 3
"""Decoded images held at once (a scene's reference and the frame being measured): memory stays bounded."""
FIELD_TEXTURE = 2e-4
"""A region whose reference has less gradient energy than this (linear light) has no blur to measure."""


@dataclass(frozen=True)
class Pair:
    scene: str
    reference: Path
    blurred: Path
    reference_position: float
    lens_position: float

    @property
    def defocus(self) -> float:
        return self.lens_position - self.reference_position


def read_pairs(folder: Path) -> tuple[dict, list[Pair]]:
    """The collect manifest and its pairs, skipping scenes that moved during capture."""
    path = Path(folder) / COLLECTION_MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"{path} not found: point --pairs at a folder written by `deblurd collect`",
                               ExitCode.NOINPUT) from None
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path} is unreadable ({exc}): collect the pairs again", ExitCode.NOINPUT) from None
    if manifest.get("format") != PAIRS_FORMAT:
        raise CalibrationError(f"{path} is not a {PAIRS_FORMAT} manifest (format {manifest.get('format')!r})")
    pairs = []
    for scene in manifest.get("scenes", []):
        if scene.get("moved"):
            continue
        files = scene["files"]
        ref = next(f for f in files if f["role"] == "reference")
        for f in files:
            if f["role"] == "blurred" and f["lens_applied"] is not None:
                pairs.append(Pair(scene["folder"], folder / ref["file"], folder / f["file"],
                                  float(ref["lens_applied"]), float(f["lens_applied"])))
    if not pairs:
        raise CalibrationError(f"{folder} holds no usable pairs (every scene moved, or no blurred frames): "
                               f"collect again with the camera held still")
    return manifest, pairs


def read_linear(path: Path) -> np.ndarray:
    """An image file as linear-light RGB float32."""
    rgb = read_rgb(path)
    if rgb is None:
        raise CalibrationError(f"cannot read {path}: the file is missing or corrupt (delete its scene from the "
                               f"manifest or collect again)")
    return srgb_to_linear(rgb.astype(np.float32) / 255)


class Region:
    """One region's sharp window (with a margin the PSF reaches into) and the defocused pixels it must explain."""

    def __init__(self, sharp: np.ndarray, blurred: np.ndarray, margin: int, field: tuple[float, float]) -> None:
        self.sharp = sharp
        self.margin = margin
        self.field = field
        y = blurred.ravel().astype(np.float64)
        self._y = (y - y.mean()).astype(np.float32)
        self._yy = float(self._y.astype(np.float64) @ self._y.astype(np.float64))

    def error(self, psf: np.ndarray) -> float:
        """Sum of squared errors of blurred ~ a (sharp * psf) + b with the best gain a and offset b."""
        conv = cv2.filter2D(self.sharp, -1, np.ascontiguousarray(psf[::-1, ::-1]), borderType=cv2.BORDER_REFLECT101)
        m = self.margin
        x = conv[m:-m, m:-m].ravel()
        x = x - x.mean()
        xy, xx = float(np.dot(x, self._y)), float(np.dot(x, x))
        return max(self._yy - xy * xy / max(xx, 1e-12), 0.0)


def regions(sharp: np.ndarray, blurred: np.ndarray, margin: int, grid: int = GRID) -> list[Region]:
    """The textured regions of a grid over a pair of same-sized single-channel images."""
    h, w = sharp.shape
    out = []
    for i in range(grid):
        for j in range(grid):
            y0, y1 = max(margin, i * h // grid), min(h - margin, (i + 1) * h // grid)
            x0, x1 = max(margin, j * w // grid), min(w - margin, (j + 1) * w // grid)
            if y1 - y0 < 16 or x1 - x0 < 16:
                continue
            window = sharp[y0 - margin:y1 + margin, x0 - margin:x1 + margin]
            inner = window[margin:-margin, margin:-margin]
            if np.mean(np.diff(inner, axis=0) ** 2) + np.mean(np.diff(inner, axis=1) ** 2) < FIELD_TEXTURE:
                continue
            field = ((2 * i + 1) / grid - 1, (2 * j + 1) / grid - 1)
            out.append(Region(np.ascontiguousarray(window), np.ascontiguousarray(blurred[y0:y1, x0:x1]), margin,
                              field))
    return out


def fit_radius(region: Region, sign: float, lens: LensProfile, r_max: float) -> tuple[float, float]:
    """(|radius|, error) minimising the region's error over radii in [0, r_max] (golden-section search on a
    coarse scan's best bracket, so a noisy error curve does not trap it)."""
    def error(r: float) -> float:
        return region.error(lens_psf(sign * r, lens, region.field))

    scan = np.linspace(0.0, r_max, 10)
    errors = [error(float(r)) for r in scan]
    k = int(np.argmin(errors))
    lo, hi = float(scan[max(0, k - 1)]), float(scan[min(len(scan) - 1, k + 1)])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    ea, eb = error(a), error(b)
    while hi - lo > 0.01 + 0.002 * hi:
        if ea < eb:
            hi, b, eb = b, a, ea
            a = hi - ratio * (hi - lo)
            ea = error(a)
        else:
            lo, a, ea = a, b, eb
            b = lo + ratio * (hi - lo)
            eb = error(b)
    best = (a + b) / 2
    return best, error(best)


class Calibrator:
    """Fits one lens from a list of pairs (in scene order, so each reference is decoded about once)."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs = pairs
        self._cache: dict[Path, np.ndarray] = {}
        self.width = self._image(pairs[0].reference).shape[1]

    def _image(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            if len(self._cache) >= IMAGES_KEPT:
                del self._cache[next(iter(self._cache))]
            self._cache[path] = read_linear(path)
        return self._cache[path]

    def ideal(self, pair: Pair) -> float:
        """The thin lens's |radius| for the pair, in pixels of its frames."""
        return ideal_radius_per_dioptre(self.width) * abs(pair.defocus)

    def measure(self, pair: Pair, rim: float, soften: float, channel: int = 1, centre_only: bool = False,
                target: float = MEASURE_RADIUS) -> list[tuple[tuple[float, float], float, float]]:
        """(field, signed radius px at the frames' width, error / unblurred error) per textured region.

        A strongly defocused pair is measured on frames shrunk until its blur is about `target` px (the same
        answer, found far faster); soften is in pixels of a 640 px frame.
        """
        sharp, blurred = self._image(pair.reference), self._image(pair.blurred)
        if sharp.shape != blurred.shape:
            raise CalibrationError(f"{pair.blurred} is {blurred.shape[1]}x{blurred.shape[0]} but its reference is "
                                   f"{sharp.shape[1]}x{sharp.shape[0]}: collect the scene again")
        scale = min(1.0, target / max(self.ideal(pair), 1e-6))
        sharp, blurred = sharp[..., channel], blurred[..., channel]
        if scale < 1.0:
            size = (int(round(self.width * scale)), int(round(sharp.shape[0] * scale)))
            sharp = cv2.resize(sharp, size, interpolation=cv2.INTER_AREA)
            blurred = cv2.resize(blurred, size, interpolation=cv2.INTER_AREA)
            scale = size[0] / self.width
        lens = LensProfile(rim=rim, soften=soften * sharp.shape[1] / 640)
        r_max = MAX_RADIUS_FACTOR * self.ideal(pair) * scale + 1.5
        found = regions(sharp, blurred, int(math.ceil(r_max * 1.3 + 3 * lens.soften)) + 2)
        if centre_only:
            found = [r for r in found if r.field == (0.0, 0.0)]
        sign = 1.0 if pair.defocus >= 0 else -1.0
        out = []
        for region in found:
            radius, error = fit_radius(region, sign, lens, r_max)
            out.append((region.field, sign * radius / scale,
                        error / max(region.error(np.ones((1, 1), np.float32)), 1e-12)))
        return out

    def _best(self, pairs: list[Pair], values: tuple[float, ...], shape: Callable[[float], tuple[float, float]],
              target: float) -> float:
        """The value (refined between grid points by a parabola) whose shape explains the pairs' centres best."""
        totals = [sum(m[2] for p in pairs for m in self.measure(p, *shape(v), centre_only=True, target=target))
                  for v in values]
        k = int(np.argmin(totals))
        if 0 < k < len(values) - 1:
            a, b, _ = np.polyfit(values[k - 1:k + 2], totals[k - 1:k + 2], 2)
            if a > 0:
                return float(np.clip(-b / (2 * a), values[k - 1], values[k + 1]))
        return values[k]

    def fit_shape(self) -> tuple[float, float]:
        """(rim, softening at 640 px): the softening on moderately defocused pairs (where it matters for the
        radius), then the rim on the most defocused ones (where it shows, measured at a larger scale)."""
        moderate = sorted((p for p in self.pairs if 1.0 <= self.ideal(p) * 640 / self.width <= SHAPE_MIN_RADIUS),
                          key=lambda p: -abs(p.defocus))[:SHAPE_PAIRS]
        soften = self._best(moderate, SOFTENS, lambda s: (0.0, s), MEASURE_RADIUS) if moderate else 0.0
        wide = sorted((p for p in self.pairs if self.ideal(p) * 640 / self.width >= SHAPE_MIN_RADIUS),
                      key=lambda p: -abs(p.defocus))[:SHAPE_PAIRS]
        return (self._best(wide, RIMS, lambda r: (r, soften), RIM_RADIUS) if wide else 0.0), soften


def fit_line(points: list[tuple[tuple[float, float], float, float]]) -> tuple[float, float, list[RegionFit]]:
    """(k, g, per-region slopes) of radius = k (1 + g rho^2) x defocus through (field, defocus, radius) points.

    A region's slope is the median of its radius / defocus ratios, so a scene with no texture there (nothing to
    measure) does not pull it."""
    by_field: dict[tuple[float, float], list[tuple[float, float]]] = {}
    for field, defocus, radius in points:
        by_field.setdefault((round(field[0], 3), round(field[1], 3)), []).append((defocus, radius))
    fits = []
    for field, values in sorted(by_field.items()):
        ratios = [r / d for d, r in values if abs(d) > 1e-6]
        if ratios:
            fits.append(RegionFit(field=field, radius_per_dioptre=float(np.median(ratios)), points=len(ratios)))
    if not fits:
        raise CalibrationError("no pair is defocused (every lens position equals the reference): collect with "
                               "--positions away from the subject's focus")
    rho2 = np.array([(f.field[0] ** 2 + f.field[1] ** 2) / 2 for f in fits])
    slopes = np.array([f.radius_per_dioptre for f in fits])
    if np.ptp(rho2) > 0.05:
        g1, k = np.polyfit(rho2, slopes, 1, w=np.sqrt([f.points for f in fits]))
    else:
        g1, k = 0.0, float(np.mean(slopes))
    return float(k), float(g1 / k) if k else 0.0, fits


def calibrate(folder: Path, lens_id: str | None = None) -> LensCalibration:
    """Measure every pair in a collect folder and fit the lens profile."""
    manifest, pairs = read_pairs(folder)
    cal = Calibrator(pairs)
    rim, soften = cal.fit_shape()
    to_full = SENSOR_WIDTH_PX / cal.width
    points, centre = [], []
    for pair in pairs:
        measured = cal.measure(pair, rim, soften)
        points += [(field, pair.defocus, radius * to_full) for field, radius, _ in measured]
        centre += [(pair, radius * to_full, residual) for field, radius, residual in measured if field == (0.0, 0.0)]
    k, gain, fits = fit_line(points)
    chroma = _chroma(cal, rim, soften)
    profile = LensCalibration(
        lens_id=lens_id or slug(manifest.get("source", "camera")), created=datetime.now(UTC).isoformat(),
        source=str(manifest.get("source")), pairs=str(Path(folder).resolve()), radius_per_dioptre=k,
        field_gain=gain, rim=rim, soften_px=soften, chroma=chroma, regions=fits,
        fit=FitQuality(points=0, rms_relative_error=0.0, median_relative_error=0.0, max_relative_error=0.0, r2=0.0),
        measurements=[])
    measurements = [Measurement(scene=p.scene, lens_position=p.lens_position, reference_position=p.reference_position,
                                defocus_dioptres=p.defocus, radius_px=r, predicted_px=profile.radius_px(
                                    p.defocus, SENSOR_WIDTH_PX), residual=res) for p, r, res in centre]
    return profile.model_copy(update={"fit": quality(profile, points, cal.width),
                                      "measurements": measurements})


def _chroma(cal: Calibrator, rim: float, soften: float) -> tuple[float, float, float]:
    """Relative radius of R and B against G on the most defocused pairs' centres (0 when too little blur)."""
    wide = sorted((p for p in cal.pairs if cal.ideal(p) * 640 / cal.width >= SHAPE_MIN_RADIUS),
                  key=lambda p: -abs(p.defocus))[:SHAPE_PAIRS]
    ratios: dict[int, list[float]] = {0: [], 2: []}
    for pair in wide:
        green = cal.measure(pair, rim, soften, 1, centre_only=True)
        for channel, found in ratios.items():
            other = cal.measure(pair, rim, soften, channel, centre_only=True)
            if green and other and green[0][1]:
                found.append(other[0][1] / green[0][1] - 1)
    return (round(float(np.median(ratios[0])), 4) if ratios[0] else 0.0, 0.0,
            round(float(np.median(ratios[2])), 4) if ratios[2] else 0.0)


def quality(profile: LensCalibration, points: list, width: int) -> FitQuality:
    """How well the line explains the measurements: relative error where the blur is at least 1 px, R^2 overall."""
    predicted = np.array([profile.radius_px(d, SENSOR_WIDTH_PX, field) for field, d, _ in points])
    measured = np.array([r for _, _, r in points])
    big = np.abs(predicted) * width / SENSOR_WIDTH_PX >= 1.0
    rel = (measured[big] - predicted[big]) / predicted[big] if big.any() else np.zeros(1)
    total = float(np.sum((measured - measured.mean()) ** 2))
    r2 = 1 - float(np.sum((measured - predicted) ** 2)) / total if total > 0 else 0.0
    return FitQuality(points=len(points), rms_relative_error=float(np.sqrt(np.mean(rel**2))),
                      median_relative_error=float(np.median(np.abs(rel))),
                      max_relative_error=float(np.max(np.abs(rel))), r2=r2)


def slug(text: str) -> str:
    """A lens id from free text: lower case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "lens"


def format_report(profile: LensCalibration) -> str:
    lines = [profile.summary(), f"{'position':>9} {'reference':>9} {'defocus':>8} {'measured px':>11} "
                                f"{'predicted px':>12} {'error':>7}  (full-resolution px, frame centre)"]
    for m in sorted(profile.measurements, key=lambda m: (m.defocus_dioptres, m.scene)):
        error = (m.radius_px - m.predicted_px) / m.predicted_px if abs(m.predicted_px) >= 1e-6 else 0.0
        lines.append(f"{m.lens_position:9.2f} {m.reference_position:9.2f} {m.defocus_dioptres:8.2f} "
                     f"{m.radius_px:11.2f} {m.predicted_px:12.2f} {error:7.1%}")
    q = profile.fit
    lines.append(f"fit: {q.points} region measurements, R^2 {q.r2:.4f}; relative error where the blur is >= 1 px: "
                 f"median {q.median_relative_error:.1%}, RMS {q.rms_relative_error:.1%}, "
                 f"max {q.max_relative_error:.1%} "
                 f"(a large maximum is usually a region with little texture)")
    return "\n".join(lines)


EXAMPLES = """examples:
  deblurd calibrate --pairs pairs/                     write lens-profile.json beside the state file
  deblurd calibrate --pairs pairs/ --lens-id cm3-wide  name the lens (fine-tuned packs are photo-<id>)
  deblurd calibrate --pairs pairs/ --out my-lens.json  write it elsewhere, then set lens.profile to it
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="config file (where the profile is written)")
    parser.add_argument("--pairs", type=Path, required=True, metavar="DIR", help="a folder from `deblurd collect`")
    parser.add_argument("--lens-id", metavar="ID", help="short name for this lens (default: from the camera name)")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="profile to write (default lens.profile, else lens-profile.json beside the state file)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    out = args.out or profile_path(cfg.state_file, cfg.lens.profile)
    lens_id = slug(args.lens_id) if args.lens_id else None
    try:
        profile = calibrate(args.pairs, lens_id)
    except CalibrationError as exc:
        print(f"deblurd calibrate: {exc}", file=sys.stderr)
        return exc.exit_code
    save_profile(out, profile)
    print(format_report(profile))
    print(f"lens profile written to {out}")
    return 0
