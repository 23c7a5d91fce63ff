"""The model-pack manifest: what each .tflite file is, its checksum, and the blur it was trained for.

Written by tools/train/export.py, read and verified by the daemon before any model is loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deblurd.errors import PackError
from deblurd.frames import SEVERITY_LABELS
from deblurd.optics.blur import BlurDefinition

PACK_MANIFEST_NAME = "manifest.json"
"""A model pack's manifest (commands.collect.COLLECTION_MANIFEST_NAME is a pairs folder's)."""
Role = Literal["classifier", "semi", "heavy"]
ROLES: tuple[Role, ...] = get_args(Role)
RESTORER_ROLES: tuple[Role, ...] = ROLES[1:]
"""The generators: one per blurred class, named as the class."""
MapOutput = Literal["classes", "radius"]
"""What a pack's mapper gives per cell: probabilities of the blur classes, or the defocus radius (px at the working
scale, divided by radius_scale) and a confidence in [0, 1]."""
Channel = Literal["luma", "radius", "wiener"]
"""A generator's input channels, in order: luminance; the radius map / radius_scale; luminance Wiener-deconvolved
with a disk of the tile's radius (deblurd.optics.wiener)."""
RADIUS_SCALE = 8.0
"""Default radius normalisation: a radius channel (and a radius mapper's output) holds radius px / this."""
WIENER_SIGMA = 4.0 / 255.0
"""Noise sigma a Wiener channel is computed for (new packs record it; training uses it). The camera's pipeline
(demosaicing, sharpening, JPEG) leaves more noise, and more correlated, than the sensor's, and 4/255 served a
disk Wiener best on the realistic synthesis (`python -m tools.eval.wiener_channel`: semi 33.17 dB against 32.67
at 2/255 and 32.83 at 6/255; heavy 30.30 against 29.45 and 30.18) and was what the photo evaluation tuned for
its semi disk rows."""


def _luma_only() -> list[Channel]:
    """A generator's default input: luminance alone (every pack before radius maps)."""
    return ["luma"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelFile(_Strict):
    """One exported model, int8 (full-integer) and float variants."""

    file: str = Field(title="int8 .tflite file name inside the pack")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    float_file: str = Field(title="float32 .tflite file name inside the pack")
    float_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    input_shape: list[int] = Field(min_length=4, max_length=4, title="[1, H, W, C] of the fixed input tile")
    overlap: int = Field(0, ge=0, title="tile overlap in pixels when restoring or mapping (0 for a crop classifier)")
    architecture: str
    recipe: str = Field(title="training recipe that produced the shipped weights")
    params: int = Field(ge=0)
    macs_per_pixel: float = Field(ge=0)
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)
    output: MapOutput = Field("classes", title="the mapper's output per cell (classifier only)")
    inputs: list[Channel] = Field(default_factory=_luma_only, min_length=1,
                                  title="input channels in order (generators; luma first)")
    radius_scale: float = Field(RADIUS_SCALE, gt=0, title="radius px per unit of a radius channel or output")
    wiener_sigma: float = Field(WIENER_SIGMA, gt=0, title="noise sigma the Wiener channel is computed for")
    macs_per_pixel_with_map: float | None = Field(None, ge=0, title="a generator's MACs per pixel plus the map's")

    @model_validator(mode="after")
    def _channels(self) -> ModelFile:
        if self.inputs[0] != "luma" or len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"inputs {self.inputs}: luma first, each channel once (luma, radius, wiener)")
        if self.input_shape[3] != len(self.inputs):
            raise ValueError(f"input_shape {self.input_shape} has {self.input_shape[3]} channel(s) but inputs names "
                             f"{len(self.inputs)}: {self.inputs}")
        return self

    @property
    def needs_radius(self) -> bool:
        """A generator told the blur: it takes the radius map (as a channel, or through the Wiener channel)."""
        return len(self.inputs) > 1


class Manifest(_Strict):
    name: str
    version: str
    created: str
    colour: Literal["luminance"] = Field("luminance", title="generators restore the Y of YCrCb; chroma is kept")
    value_range: tuple[float, float] = (0.0, 1.0)
    working_width: int | None = Field(None, ge=8, title="frame width the blur classes are defined at (None = any)")
    class_names: list[str] = Field(default_factory=lambda: [str(label) for label in SEVERITY_LABELS])
    blur: BlurDefinition
    models: dict[Role, ModelFile]
    data: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _radius_source(self) -> Manifest:
        needing = [role for role in RESTORER_ROLES if role in self.models and self.models[role].needs_radius]
        mapper = self.models.get("classifier")
        if needing and (mapper is None or mapper.output != "radius"):
            raise ValueError(f"generators {needing} take the radius map but the classifier's output is "
                             f"{mapper and mapper.output!r}: export a radius mapper (--arch mapper-radius)")
        return self


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(pack_dir: Path) -> Manifest:
    """Read and validate a pack's manifest.json, with errors that say which pack and what to do."""
    path = Path(pack_dir) / PACK_MANIFEST_NAME
    if not Path(pack_dir).is_dir():
        raise PackError(f"model pack folder {pack_dir} does not exist (set models.dir / models.pack in the config, "
                        f"or rebuild it with tools/train/export.py)")
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise PackError(f"{path} is missing: the pack is incomplete (reinstall the models folder)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise PackError(f"{path} is not a valid manifest: {exc} (reinstall the models folder)") from exc


def verify_file(pack_dir: Path, name: str, expected_sha256: str) -> Path:
    """Return the path of a pack file after checking that it exists and matches its manifest checksum."""
    path = Path(pack_dir) / name
    if not path.is_file():
        raise PackError(f"model file {path} is missing (reinstall the models folder)")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise PackError(f"model file {path} does not match its manifest checksum "
                        f"(expected {expected_sha256[:12]}…, found {actual[:12]}…): the file is corrupt or was "
                        f"replaced; reinstall the models folder")
    return path
