"""The lens profile: how much this camera's lens blurs at each LensPosition, as measured by `deblurd calibrate`.

A thin lens makes a blur circle whose radius grows in proportion to the defocus in dioptres (|LensPosition -
subject nearness|); the profile stores that slope in full-resolution sensor pixels, how it grows towards the frame
corners, and the PSF's shape (rim, edge softening, colour), so the daemon knows the blur to expect at its
LensPosition and the fine-tuning synthesises blur of this lens. It is one versioned JSON file in the state
directory (beside the status file), written whole by AtomicWriter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deblurd.atomic import AtomicWriter
from deblurd.errors import LensProfileError
from deblurd.optics.lens_psf import LensProfile

log = logging.getLogger(__name__)

FORMAT: Literal["deblurd-lens-profile/1"] = "deblurd-lens-profile/1"
PROFILE_NAME = "lens-profile.json"

# Camera Module 3 (Sony IMX708, standard lens): the facts the thin-lens model needs.
SENSOR_WIDTH_PX = 4608
SENSOR_HEIGHT_PX = 2592
PIXEL_PITCH_UM = 1.4
FOCAL_LENGTH_MM = 4.74
F_NUMBER = 1.8
LENS_RANGE = (0.0, 32.0, 1.0)
"""LensPosition (min, max, default) in dioptres as libcamera reports it for the IMX708."""


def ideal_radius_per_dioptre(width: int = SENSOR_WIDTH_PX) -> float:
    """Thin-lens blur-circle radius in pixels per dioptre of defocus for a frame `width` pixels wide.

    The circle's diameter on the sensor is A f |dD| with aperture A = f / N: 12.5 um (8.9 full-resolution
    pixels) per dioptre for the Camera Module 3, so 4.46 px of radius at 4608 px and 0.62 px at 640 px.
    """
    focal_m = FOCAL_LENGTH_MM * 1e-3
    diameter_um = (focal_m / F_NUMBER) * focal_m * 1e6
    return diameter_um / PIXEL_PITCH_UM / 2 * width / SENSOR_WIDTH_PX


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Measurement(_Strict):
    """One pair's measured blur in the centre region beside what the fitted profile predicts."""

    scene: str
    lens_position: float
    reference_position: float
    defocus_dioptres: float = Field(title="lens position minus the in-focus reference position")
    radius_px: float = Field(title="measured signed radius, full-resolution pixels at the frame centre")
    predicted_px: float
    residual: float = Field(title="sum of squared errors of the best fit / of leaving the pair unblurred")


class RegionFit(_Strict):
    """The slope fitted in one region of the frame; field is its centre, -1..1 from the frame centre."""

    field: tuple[float, float]
    radius_per_dioptre: float
    points: int


class FitQuality(_Strict):
    points: int
    rms_relative_error: float = Field(title="RMS of (measured - predicted) / predicted over pairs blurred >= 1 px")
    median_relative_error: float = Field(title="median of |measured - predicted| / predicted, same pairs")
    max_relative_error: float
    r2: float


class LensCalibration(_Strict):
    """A calibrated lens: blur per dioptre (centre, growth to the corner), PSF shape, and how well it fits."""

    format: Literal["deblurd-lens-profile/1"] = FORMAT
    lens_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", title="short name; fine-tuned packs are photo-<lens_id>")
    created: str
    source: str = Field(title="the camera the pairs came from (collect manifest)")
    pairs: str = Field(title="the collect folder calibrated from")
    sensor_width_px: int = SENSOR_WIDTH_PX
    radius_per_dioptre: float = Field(gt=0, title="blur radius at the frame centre, full-resolution px per dioptre")
    field_gain: float = Field(title="relative radius growth at the frame corner: r = r0 (1 + gain * rho^2)")
    rim: float = Field(ge=-1, le=1, title="light towards the disk's rim behind focus (lens_psf.LensProfile.rim)")
    soften_px: float = Field(ge=0, title="Gaussian softening of the disk edge at 640 px width")
    chroma: tuple[float, float, float] = Field(title="relative radius change of R, G, B")
    regions: list[RegionFit]
    fit: FitQuality
    measurements: list[Measurement]

    def radius_px(self, defocus_dioptres: float, width: int, field: tuple[float, float] = (0.0, 0.0)) -> float:
        """Signed blur radius in pixels of a `width`-pixel frame for a defocus (LensPosition - subject nearness)
        at a field position (y, x in -1..1; the corner is rho = 1)."""
        rho2 = (field[0] ** 2 + field[1] ** 2) / 2
        scale = width / self.sensor_width_px
        return self.radius_per_dioptre * scale * defocus_dioptres * (1 + self.field_gain * rho2)

    def expected_radius(self, lens_position: float, subject_dioptres: float = 0.0, width: int = 640) -> float:
        """The blur (|radius| px at `width`, frame centre) of a subject at `subject_dioptres` (0 = infinity, the
        background of most scenes) while the lens holds `lens_position`."""
        return abs(self.radius_px(lens_position - subject_dioptres, width))

    def psf_lens(self, width: int = 640) -> LensProfile:
        """The PSF shape for the blur synthesis (deblurd.optics.lens_psf) at a frame `width` pixels wide."""
        return LensProfile(rim=self.rim, soften=self.soften_px * width / 640, chroma=self.chroma)

    def summary(self) -> str:
        """One line for `deblurd status` and `doctor`."""
        return (f"lens {self.lens_id}: {self.radius_per_dioptre:.2f} px/dioptre at full resolution "
                f"({self.radius_per_dioptre * 640 / self.sensor_width_px:.3f} at 640 px; ideal thin lens "
                f"{ideal_radius_per_dioptre():.2f}), corners {self.field_gain:+.0%}, rim {self.rim:+.2f}, "
                f"fit error median {self.fit.median_relative_error:.1%} over {self.fit.points} region measurements, "
                f"{self.created[:10]}")


def profile_path(state_file: Path, configured: Path | None = None) -> Path:
    """Where the profile lives: the configured path, else lens-profile.json in the state file's folder."""
    return Path(configured) if configured is not None else Path(state_file).parent / PROFILE_NAME


def load_profile(path: Path) -> LensCalibration:
    """Read and validate a profile; LensProfileError says what is wrong and how to fix it."""
    try:
        return LensCalibration.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise LensProfileError(f"no lens profile at {path}: run `deblurd calibrate --pairs DIR` on pairs from "
                               f"`deblurd collect`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise LensProfileError(f"lens profile {path} is unreadable or not {FORMAT} ({first}): run "
                               f"`deblurd calibrate` again") from None


def save_profile(path: Path, profile: LensCalibration) -> None:
    """Write the profile whole (a crash leaves the previous one in place)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    AtomicWriter().write(Path(path), profile.model_dump_json(indent=1).encode("utf-8") + b"\n")


def daemon_profile(state_file: Path, configured: Path | None) -> LensCalibration | None:
    """The profile the daemon steers by: a configured one must be readable (LensProfileError otherwise); the
    default one beside the state file is optional, and an unreadable one is ignored with a warning."""
    path = profile_path(state_file, configured)
    if configured is None and not path.exists():
        return None
    try:
        return load_profile(path)
    except LensProfileError as exc:
        if configured is not None:
            raise
        log.warning("%s; running without it", exc)
        return None
