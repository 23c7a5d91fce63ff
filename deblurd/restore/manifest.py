"""The model-pack manifest: what each .tflite file is, its checksum, and the blur it was trained for.

Written by tools/train/export.py, read and verified by the daemon before any model is loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deblurd.optics.blur import BlurDefinition
from deblurd.frames import SEVERITY_LABELS
from deblurd.errors import PackError

PACK_MANIFEST_NAME = "manifest.json"
"""A model pack's manifest (commands.collect.COLLECTION_MANIFEST_NAME is a pairs folder's)."""
Role = Literal["classifier", "semi", "heavy"]
ROLES: tuple[Role, ...] = get_args(Role)
RESTORER_ROLES: tuple[Role, ...] = ROLES[1:]
"""The generators: one per blurred class, named as the class."""


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


class Manifest(_Strict):
    name: str
    version: str
    created: str
    colour: Literal["luminance"] = Field("luminance", title="generators restore the Y of YCrCb; chroma is kept")
    value_range: tuple[float, float] = (0.0, 1.0)
    working_width: Optional[int] = Field(None, ge=8, title="frame width the blur classes are defined at (None = any)")
    class_names: list[str] = Field(default_factory=lambda: [str(label) for label in SEVERITY_LABELS])
    blur: BlurDefinition
    models: dict[Role, ModelFile]
    data: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)


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
