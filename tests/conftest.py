"""Shared fixtures and helpers: the shipped photo model pack, the bundled samples, the data sets, config builders."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurd.camera import SAMPLES_DIR
from deblurd.config import Config
from tools import data

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


def read_sample(name: str = "03-heavy.jpg") -> np.ndarray:
    """A bundled replay frame as RGB uint8."""
    return cv2.cvtColor(cv2.imread(str(SAMPLES_DIR / name)), cv2.COLOR_BGR2RGB)


needs_packages = pytest.mark.skipif(
    not (data.FASHION_DIR.exists() and data.MNIST_DIR.exists() and data.OPENCV_DIR.exists()),
    reason="data packages not installed (run `make data`)")
"""For tests that read the training data sets, which `make data` installs."""


def make_config(tmp_path: Path, **areas: dict) -> Config:
    """Defaults with the output (and status file) under tmp_path, plus per-area overrides."""
    data: dict = {"output": {"dir": str(tmp_path / "out")}, "thermal": {"enabled": False}}
    for area, values in areas.items():
        data.setdefault(area, {}).update(values)
    return Config.model_validate(data)
