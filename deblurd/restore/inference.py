"""Load a verified model pack and run its models: score blur severity of a crop, restore luminance.

blur_map.py maps a frame with the classifier and router.py restores each region on its route.

Models are TFLite files checked against the pack manifest's sha256 before loading. Generators work on the
Y channel of YCrCb at the pack's working scale, in overlapping tiles (tiling.py); chroma is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deblurd.frames import SEVERITY_LABELS
from deblurd.restore.manifest import (
    RADIUS_SCALE,
    RESTORER_ROLES,
    WIENER_SIGMA,
    Manifest,
    ModelFile,
    PackError,
    load_manifest,
    verify_file,
)
from deblurd.restore.radius_map import generator_input
from deblurd.restore.tflite import TfliteModel, interpreter_class
from deblurd.restore.tiling import run_tiled

log = logging.getLogger(__name__)


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """Y of YCrCb as float32 in [0, 1]."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[:, :, 0].astype(np.float32) / 255.0


def split_luma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Y float32 in [0, 1], YCrCb uint8 whose Cr/Cb are kept for merge_luma)."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    return ycrcb[:, :, 0].astype(np.float32) / 255.0, ycrcb


def merge_luma(luma: np.ndarray, ycrcb: np.ndarray) -> np.ndarray:
    """RGB uint8 from a restored Y and the original chroma."""
    out = ycrcb.copy()
    out[:, :, 0] = np.round(np.clip(luma, 0.0, 1.0) * 255.0).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_YCrCb2RGB)


def working_size(shape: tuple[int, int], working_width: int | None) -> tuple[int, int]:
    """(width, height) of an HxW image scaled to the pack's working width, aspect kept."""
    h, w = shape
    if working_width is None:
        return w, h
    return working_width, max(1, int(round(h * working_width / w)))


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (width, height): area-averaged when shrinking (no aliasing), cubic when enlarging; the same array
    when the size is already right."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


class Classifier:
    """The pack's blur-severity classifier: class probabilities of one crop, or of each cell of a tile for a dense
    map model, at the working scale (blur_map.py runs it over a frame)."""

    def __init__(self, model: TfliteModel, manifest: Manifest, model_id: str, overlap: int = 0) -> None:
        if manifest.class_names != list(SEVERITY_LABELS):
            raise PackError(f"pack {manifest.name} names its classes {manifest.class_names}; this deblurd routes "
                            f"{list(SEVERITY_LABELS)}: install a pack made for this version")
        entry = manifest.models["classifier"]
        self.model = model
        self.working_width = manifest.working_width
        self.model_id = model_id
        self.overlap = overlap
        self.blur = manifest.blur
        self.output = entry.output
        """"classes" (probabilities of SEVERITY_LABELS) or "radius" (radius / radius_scale, confidence) per cell."""
        self.radius_scale = entry.radius_scale
        self.tile = model.input_shape[1]
        """The exported input size: a crop classifier's crop, a dense map model's tile."""
        self.dense = len(model.output_shape) == 4
        self.stride = self.tile // model.output_shape[1] if self.dense else 0
        """Input pixels per map cell of a dense map model."""
        self.channels = model.output_shape[-1]
        wanted = 2 if self.output == "radius" else len(SEVERITY_LABELS)
        if self.channels != wanted or (self.output == "radius" and not self.dense):
            raise PackError(f"{model.path} gives {list(model.output_shape)} but the manifest says its output is "
                            f"{self.output!r} ({wanted} channels per map cell): re-export the pack")

    def scores(self, crop: np.ndarray) -> np.ndarray:
        """Probabilities of sharp, semi and heavy for one crop: one row, or one per cell of the crop for a dense map
        model, which (fully convolutional) takes any size that is a multiple of its stride; the interpreter is
        resized when the size changes."""
        if self.model.input_shape[1:3] != crop.shape:
            self.model.resize((1, *crop.shape, 1))
        return self.model(crop[None, :, :, None])[0]


class Restorer:
    """One generator applied to luminance of any size: at the working scale, in blended tiles. A non-blind one
    (manifest inputs beyond "luma") is also given the radius map on every tile (radius_map.generator_input)."""

    def __init__(self, model: TfliteModel, overlap: int, working_width: int | None, model_id: str,
                 entry: ModelFile | None = None) -> None:
        self.model = model
        self.overlap = overlap
        self.working_width = working_width
        self.model_id = model_id
        _, self.tile_h, self.tile_w, _ = model.input_shape
        self.inputs: list[str] = list(entry.inputs) if entry is not None else ["luma"]
        self.radius_scale = entry.radius_scale if entry is not None else RADIUS_SCALE
        self.wiener_sigma = entry.wiener_sigma if entry is not None else WIENER_SIGMA

    @property
    def needs_radius(self) -> bool:
        return len(self.inputs) > 1

    def restore_working(self, luma: np.ndarray, radius: np.ndarray | None = None) -> np.ndarray:
        """Restore an image already at working scale, tile by tile; `radius` (px at this scale, per pixel) feeds a
        non-blind generator's radius and Wiener channels."""
        if not self.needs_radius:
            return run_tiled(luma, lambda t: self.model(t[None, :, :, None])[0, :, :, 0], (self.tile_h, self.tile_w),
                             self.overlap)
        if radius is None:
            raise ValueError(f"{self.model_id} takes {self.inputs}: it needs the radius map (Router.plan gives it)")
        return run_tiled(np.stack([luma, radius.astype(np.float32)]), lambda t: self.model(generator_input(
            t[0], t[1], self.inputs, self.radius_scale, self.wiener_sigma)[None])[0, :, :, 0],
            (self.tile_h, self.tile_w), self.overlap)

    def restore(self, luma: np.ndarray, radius: np.ndarray | None = None) -> np.ndarray:
        """Restored luminance at the input's size; a larger input keeps its resolution (the correction is upsampled).
        `radius` (HxW as luma, px at the working scale) is what a non-blind generator is told."""
        h, w = luma.shape
        size = working_size((h, w), self.working_width)
        if size == (w, h):
            return np.clip(self.restore_working(luma, radius), 0.0, 1.0)
        work = resize_to(luma, size)
        radius = None if radius is None else cv2.resize(radius, size, interpolation=cv2.INTER_LINEAR)
        restored = self.restore_working(work, radius)
        if w > size[0]:
            correction = cv2.resize(restored - work, (w, h), interpolation=cv2.INTER_CUBIC)
            return np.clip(luma + correction, 0.0, 1.0)
        return np.clip(resize_to(restored, (w, h)), 0.0, 1.0)


@dataclass
class ModelPack:
    """A verified pack: manifest, classifier and one restorer per blurred class."""

    manifest: Manifest
    classifier: Classifier
    restorers: dict[str, Restorer]
    runtime: str
    precision: str
    pack_dir: Path

    @classmethod
    def load(cls, pack_dir: Path, precision: str = "int8", runtime: str = "auto", threads: int = 2) -> ModelPack:
        """Verify every file against the manifest, then load it; raises PackError naming the file and the fix."""
        pack_dir = Path(pack_dir)
        manifest = load_manifest(pack_dir)
        interpreter, runtime_name = interpreter_class(runtime)
        log.info("model pack %s v%s (%s) with %s, %d thread(s)", manifest.name, manifest.version, precision,
                 runtime_name, threads)

        def model(entry: ModelFile) -> tuple[TfliteModel, str]:
            name, digest = (entry.file, entry.sha256) if precision == "int8" else (entry.float_file, entry.float_sha256)
            loaded = TfliteModel(verify_file(pack_dir, name, digest), interpreter, threads)
            if list(loaded.input_shape) != list(entry.input_shape):
                raise PackError(f"model file {loaded.path} takes input {list(loaded.input_shape)} but the manifest "
                                f"says {entry.input_shape}: the pack is inconsistent; re-export it with "
                                "tools/train/export.py")
            return loaded, f"{manifest.name}/{name}@{manifest.version}"

        loaded, model_id = model(manifest.models["classifier"])
        classifier = Classifier(loaded, manifest, model_id, manifest.models["classifier"].overlap)
        restorers: dict[str, Restorer] = {}
        for label in RESTORER_ROLES:
            entry = manifest.models[label]
            loaded, model_id = model(entry)
            restorers[label] = Restorer(loaded, entry.overlap, manifest.working_width, model_id, entry)
        return cls(manifest, classifier, restorers, runtime_name, precision, pack_dir)
