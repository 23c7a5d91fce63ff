"""A simulated Camera Module 3: photos seen through a thin lens at the current LensPosition, then the camera.

It is a FrameSource with a focus motor, so `run`, `collect` and `calibrate` can be exercised end to end without a
Pi. A scene is a photo (cropped and flipped per scene, seeded) with a depth layout: a plane at a set nearness
(dioptres, 0 = infinity), or a background plane with nearer layers. The blur radius is the thin-lens one
(lens_profile.ideal_radius_per_dioptre) times this camera's own, seeded imperfections (SimLens: a radius scale,
growth towards the corners, a rim, edge softening, colour, vignetting), so calibration has something real to
find. Rendering uses the realistic synthesis (deblurd.optics.defocus, deblurd.optics.lens_psf) and the camera pipeline
(deblurd.optics.sensor: Bayer mosaic, noise, ISP). Autofocus lands on the subject and stands for re-aiming the camera:
each autofocus cycle after the first looks at the next scene. Stills are rendered at `still_width` (default
1152, a quarter of the sensor's 4608 px) rather than full resolution, to keep a still's time and memory modest.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import cv2
import numpy as np

from deblurd.capture.camera import IMAGE_EXTENSIONS, SAMPLES_DIR
from deblurd.capture.display import letterbox
from deblurd.capture.pacing import Pacer
from deblurd.errors import CameraError
from deblurd.frames import Frame, FrameKind
from deblurd.image_io import MAX_IMAGE_PIXELS, InputError, bounded_size, read_rgb
from deblurd.log_limit import printable
from deblurd.optics.defocus import Layer, SceneObject, ShapeKind, render
from deblurd.optics.lens_profile import LENS_RANGE, SENSOR_HEIGHT_PX, SENSOR_WIDTH_PX, ideal_radius_per_dioptre
from deblurd.optics.lens_psf import LensProfile
from deblurd.optics.sensor import SensorProfile, capture, srgb_to_linear

log = logging.getLogger(__name__)

Layout = Literal["plane", "layers"]
RENDER_CACHE = 6
"""Noise-free renders kept (scene, lens position, size): repeated frames only pay for the sensor's noise."""
WHITE_ELECTRONS_640 = 20000.0
"""Photo-electrons at white per pixel of a 640 px frame at gain 1 (binned); a larger frame has fewer per pixel."""


@dataclass(frozen=True)
class SimLens:
    """How this simulated lens departs from the ideal thin lens; draw() gives a plausible, seeded one."""

    radius_scale: float = 1.0
    """True blur / thin-lens blur (aperture, focal length and focus-scale tolerances together)."""
    field_gain: float = 0.0
    """Relative radius growth at the frame corner (field curvature): r = r0 (1 + gain rho^2)."""
    rim: float = 0.0
    soften_px: float = 0.0
    """Disk-edge softening in pixels of a 640 px frame."""
    chroma: tuple[float, float, float] = (0.0, 0.0, 0.0)
    vignetting: float = 0.0
    """Light lost at the frame corner (brightness 1 - v rho^2)."""

    @staticmethod
    def draw(seed: int) -> SimLens:
        rng = np.random.default_rng([seed, 13])
        scale = float(rng.choice([-1, 1]) * rng.uniform(0.08, 0.25) + 1)
        sign = float(rng.choice([-1, 1]))
        return SimLens(scale, float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.2, 0.5)),
                       (sign * float(rng.uniform(0.01, 0.04)), 0.0, -sign * float(rng.uniform(0.01, 0.04))),
                       float(rng.uniform(0.15, 0.35)))

    def psf(self, width: int) -> LensProfile:
        return LensProfile(rim=self.rim, soften=self.soften_px * width / 640, chroma=self.chroma)


def scene_files(path: Path | None) -> list[Path]:
    """The scene photos: a file, a folder's images, or (None) the bundled samples that are sharp."""
    if path is None:
        labels = json.loads((SAMPLES_DIR / "samples.json").read_text())["frames"]
        return sorted(SAMPLES_DIR / name for name, info in labels.items() if info["label"] == "sharp")
    path = Path(path)
    try:
        if path.is_file():
            return [path]
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if files:
                return files
    except OSError as exc:
        raise CameraError(f"simulated camera: cannot read {printable(path)} ({exc.strerror or exc}): make it "
                          f"readable by the daemon's user, or set camera.sim_scene") from exc
    raise CameraError(f"simulated camera: {printable(path)} is not a photo or a folder of photos "
                      f"(set camera.sim_scene)")


def bounded_scenes(files: list[Path], max_pixels: int) -> list[Path]:
    """The scene photos whose header is within max_pixels; each one refused is named once, here."""
    kept = []
    for file in files:
        try:
            bounded_size(file, max_pixels)
        except InputError as exc:
            log.warning("simulated camera: scene photo skipped: %s", exc)
            continue
        kept.append(file)
    if not kept:
        raise CameraError("simulated camera: no scene photo can be used (see the lines above): set camera.sim_scene "
                          "to photos within camera.max_image_megapixels")
    return kept


class SimCamera:
    """FrameSource over a simulated Camera Module 3 (see the module docstring)."""

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float = 10.0, scene: Path | None = None,
                 layout: Layout = "plane", subject_dioptres: float = 0.5, seed: int = 0,
                 still_width: int = 1152, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.size = size
        self.max_pixels = max_pixels
        self.fps = fps
        self.layout = layout
        self.subject_dioptres = subject_dioptres
        self.seed = seed
        self.still_width = still_width
        self.lens = SimLens.draw(seed)
        self.name = f"sim-cm3-{seed}"
        self._scene_path = scene
        self._files: list[Path] = []
        self._scene = 0
        self._position = LENS_RANGE[2]
        self._focused_once = False
        self._seq = 0
        self._pacer = Pacer(fps)
        self._lock = threading.Lock()
        self._renders: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._photo: dict[int, np.ndarray] = {}
        self._shown: np.ndarray | None = None

    def open(self) -> None:
        self._files = bounded_scenes(scene_files(self._scene_path), self.max_pixels)
        self._pacer = Pacer(self.fps)
        log.info("simulated Camera Module 3 (seed %d, %s at %.2f dioptres, %d photo(s)): %s", self.seed, self.layout,
                 self.subject_dioptres, len(self._files), self.lens)

    # optics -----------------------------------------------------------------------------------------------

    def radius_map(self, height: int, width: int, defocus: float) -> np.ndarray:
        """The signed blur radius (px) of the green channel across a frame for a defocus in dioptres."""
        ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
        xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
        rho2 = (ys**2 + xs**2) / 2
        return (ideal_radius_per_dioptre(width) * self.lens.radius_scale * defocus
                * (1 + self.lens.field_gain * rho2)).astype(np.float32)

    def true_radius(self, lens_position: float, width: int, field: tuple[float, float] = (0.0, 0.0)) -> float:
        """The signed radius (px at `width`) the subject plane has at a field point while the lens is at
        `lens_position`: the truth calibration is scored against."""
        rho2 = (field[0] ** 2 + field[1] ** 2) / 2
        return (ideal_radius_per_dioptre(width) * self.lens.radius_scale * (lens_position - self.subject_dioptres)
                * (1 + self.lens.field_gain * rho2))

    def _layers(self, height: int, width: int, rng: np.random.Generator) -> tuple[list[Layer], list[float]]:
        """Back-to-front layers with their nearness: the subject plane, and in the layers layout 1-3 objects
        1-4 dioptres nearer."""
        layers = [Layer(np.ones((height, width), np.float32), 0.0)]
        nears = [self.subject_dioptres]
        if self.layout == "layers":
            for _ in range(int(rng.integers(1, 4))):
                near = float(rng.uniform(self.subject_dioptres + 1.0, self.subject_dioptres + 4.0))
                obj = SceneObject(cast(ShapeKind, str(rng.choice(["blob", "box", "edge"]))),
                                  float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)),
                                  float(rng.uniform(0.15, 0.35)), float(rng.uniform(0, np.pi)), near,
                                  int(rng.integers(2**31)))
                layers.append(Layer(obj.alpha(height, width), 0.0))
                nears.append(near)
            order = np.argsort(nears, kind="stable")
            layers, nears = [layers[i] for i in order], [nears[i] for i in order]
        return layers, nears

    def _scene_photo(self, index: int, height: int, width: int) -> np.ndarray:
        """The scene's photo as linear light at this size: a seeded crop of the frame's aspect, maybe flipped
        (or the image on the display in front of the camera, filling the view)."""
        if self._shown is not None:
            return srgb_to_linear(letterbox(self._shown, width, height).astype(np.float32) / 255)
        file = self._files[index % len(self._files)]
        if index not in self._photo:
            try:
                rgb = read_rgb(file, self.max_pixels)
            except InputError as exc:
                raise CameraError(f"simulated camera: {exc}") from exc
            if rgb is None:
                raise CameraError(f"simulated camera: cannot read scene photo {printable(file)} (replace or remove it)")
            self._photo = {index: rgb}
        photo = self._photo[index]
        rng = np.random.default_rng([self.seed, index, 1])
        ph, pw = photo.shape[:2]
        crop_w = min(pw, ph * width / height) * float(rng.uniform(0.75, 1.0) if index >= len(self._files) else 1.0)
        crop_h = crop_w * height / width
        y0, x0 = rng.uniform(0, max(0.0, ph - crop_h)), rng.uniform(0, max(0.0, pw - crop_w))
        crop = photo[int(y0):int(y0 + crop_h), int(x0):int(x0 + crop_w)]
        if rng.random() < 0.5 and index >= len(self._files):
            crop = crop[:, ::-1]
        small = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)
        return srgb_to_linear(small.astype(np.float32) / 255)

    def render_light(self, index: int, lens_position: float, height: int, width: int) -> np.ndarray:
        """Noise-free linear light on the sensor for a scene at a lens position (cached)."""
        key = (index, round(lens_position, 3), height, width)
        if key in self._renders:
            self._renders.move_to_end(key)
            return self._renders[key]
        light = self._scene_photo(index, height, width)
        layers, nears = self._layers(height, width, np.random.default_rng([self.seed, index, 2]))
        layers = [Layer(layer.alpha, self.radius_map(height, width, lens_position - near))
                  for layer, near in zip(layers, nears)]
        out, _ = render(light, layers, self.lens.psf(width))
        ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
        xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
        out *= (1 - self.lens.vignetting * (ys**2 + xs**2) / 2)[..., None]
        self._renders[key] = out
        while len(self._renders) > RENDER_CACHE:
            self._renders.popitem(last=False)
        return out

    def _capture(self, height: int, width: int, kind: FrameKind) -> Frame:
        light = self.render_light(self._scene, self._position, height, width)
        self._seq += 1
        rng = np.random.default_rng([self.seed, self._seq, 3])
        sensor = SensorProfile(gain=2.0, white_electrons=WHITE_ELECTRONS_640 * (640 / width) ** 2,
                               read_electrons=3.0, denoise=0.3, sharpen=0.5)
        srgb = capture(light, sensor, rng)
        pixels = np.round(srgb * 255).astype(np.uint8)
        return Frame(pixels, self._seq, time.time(), kind,
                     {"source": self.name, "lens_position": self._position, "exposure_us": 10000,
                      "analogue_gain": sensor.gain, "scene": self._scene,
                      "subject_dioptres": self.subject_dioptres})

    # FrameSource ------------------------------------------------------------------------------------------

    def read(self, timeout: float) -> Frame:
        """The current scene at the configured size, no sooner than 1/fps after the previous frame."""
        with self._lock:
            self._pacer.wait(timeout, "simulated camera")
            return self._capture(self.size[1], self.size[0], "continuous")

    def capture_still(self) -> Frame:
        """A still of the sensor's 16:9 field at `still_width` (see the module docstring)."""
        with self._lock:
            height = int(round(self.still_width * SENSOR_HEIGHT_PX / SENSOR_WIDTH_PX))
            return self._capture(height, self.still_width, "still")

    def set_lens_position(self, dioptres: float) -> float | None:
        lo, hi, _ = LENS_RANGE
        applied = min(max(float(dioptres), lo), hi)
        if applied != dioptres:
            log.info("lens position %.2f dioptres clamped to %.2f (camera range %.2f-%.2f)", dioptres, applied, lo, hi)
        self._position = applied
        return applied

    def lens_range(self) -> tuple[float, float, float] | None:
        return LENS_RANGE

    def autofocus(self) -> float | None:
        """Focus on the subject plane; every cycle after the first first moves on to the next scene."""
        if self._focused_once:
            self._scene += 1
        self._focused_once = True
        return self.set_lens_position(self.subject_dioptres)

    def show(self, rgb: np.ndarray) -> None:
        """The Display of `collect --display`: the simulated camera looks at a screen showing this image."""
        self._shown = rgb
        self._renders.clear()

    def close(self) -> None:
        self._renders.clear()
        self._photo.clear()
