"""Shared fixtures: the shipped photo model pack, the bundled samples, and config builders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deblurd.camera import SAMPLES_DIR
from deblurd.config import Config

REPO = Path(__file__).resolve().parent.parent
PHOTO_PACK = REPO / "models" / "photo"


@pytest.fixture(scope="session")
def photo_pack_dir() -> Path:
    if not (PHOTO_PACK / "manifest.json").exists():
        pytest.skip(f"the shipped model pack {PHOTO_PACK} is not exported yet (tools/export.py)")
    return PHOTO_PACK


@pytest.fixture(scope="session")
def photo_pack(photo_pack_dir: Path):
    from deblurd.inference import ModelPack

    return ModelPack.load(photo_pack_dir, "int8", "auto", threads=1)


@pytest.fixture
def pack_copy(photo_pack_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shipped pack that a test may damage."""
    return Path(shutil.copytree(photo_pack_dir, tmp_path / "models" / "photo"))


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES_DIR


def make_config(tmp_path: Path, **areas: dict) -> Config:
    """Defaults with the output (and status file) under tmp_path, plus per-area overrides."""
    data: dict = {"output": {"dir": str(tmp_path / "out")}, "thermal": {"enabled": False}}
    for area, values in areas.items():
        data.setdefault(area, {}).update(values)
    return Config.model_validate(data)
