"""Data loaders: the IDX / JSON parsers on small hand-made files, the photo split, and the installed packages."""

import gzip
import json
import struct

import cv2
import numpy as np
import pytest
from conftest import needs_packages

from deblurd.restore.packs import pack_spec
from tools.data import sources as data
from tools.data import synth


def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([4, 0, 9]))
    x, y = data.fashion_mnist("test", root=tmp_path)
    assert x.shape == (3, 28, 28) and x.dtype == np.float32
    assert np.allclose(x * 255, images)
    assert y.tolist() == [4, 0, 9]


def test_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 5, 28, 28) + bytes(100))
    with pytest.raises(ValueError, match="truncated"):
        data._read_idx(path)


def test_missing_dataset_says_how_to_install(tmp_path):
    with pytest.raises(data.DataMissing, match="make data"):
        data.fashion_mnist("train", root=tmp_path)
    with pytest.raises(data.DataMissing, match="make data"):
        data.mnist_digits("train", root=tmp_path)


def test_mnist_json_split_is_per_digit(tmp_path):
    for d in range(10):
        flat = np.full((5, 784), d / 10.0).ravel().tolist()
        (tmp_path / f"{d}.json").write_text(json.dumps({"data": flat}))
    train_x, train_y = data.mnist_digits("train", root=tmp_path)
    test_x, test_y = data.mnist_digits("test", root=tmp_path)
    assert train_x.shape == (40, 28, 28) and test_x.shape == (10, 28, 28)
    assert sorted(set(test_y.tolist())) == list(range(10))
    assert np.allclose(test_x[test_y == 3], 0.3)


def test_near_duplicates_share_a_group():
    from pathlib import Path

    assert data._group(Path("aloeL.jpg")) == data._group(Path("aloeR.jpg"))
    assert data._group(Path("left.jpg")) == data._group(Path("right.jpg"))
    assert data._group(Path("Elephants_3840x2160.jpg")) == data._group(Path("Elephants.jpg"))
    assert data._group(Path("leuvenA.jpg")) == data._group(Path("leuvenB.jpg"))


def test_user_photo_folder_is_split_by_file_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "PHOTO_SOURCES", ())
    for i in range(40):
        cv2.imwrite(str(tmp_path / f"scene_{i:02d}x.png"), np.full((300, 400, 3), i, np.uint8))
    train, val = data.photo_files("train", tmp_path), data.photo_files("validation", tmp_path)
    assert not set(train) & set(val)
    assert len(train) + len(val) == 40 and 0 < len(val) < 20
    assert data.photo_files("validation", tmp_path) == val


def test_load_luma_downscales_and_refuses_unreadable_files(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((300, 1000, 3), 128, np.uint8))
    luma = data.load_luma(path, 500)
    assert luma.shape == (150, 500) and luma.dtype == np.float32
    assert luma.mean() == pytest.approx(128 / 255, abs=1e-3)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.jpg"):
        data.load_luma(tmp_path / "bad.jpg")




@needs_packages
def test_installed_data_sets_load():
    x, y = data.fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and set(y.tolist()) == set(range(10))
    digits_x, _ = data.mnist_digits("test")
    assert digits_x.shape[1:] == (28, 28) and 1500 < len(digits_x) < 2500
    train, val = data.photo_files("train"), data.photo_files("validation")
    assert len(train) >= 20 and len(val) >= 4 and not set(train) & set(val)


@needs_packages
@pytest.mark.parametrize("pack", ["photo", "fashion-mnist"])
def test_training_batches_have_the_model_shapes(pack):
    blurred, sharp = synth.PairSource(pack, "heavy", "validation", seed=1, patch=64).batch(4)
    size = pack_spec(pack).tile if pack != "photo" else 64
    assert blurred.shape == sharp.shape == (4, size, size, 1)
    assert np.abs(blurred - sharp).mean() > 0.005
    crops, labels = synth.SeveritySource(pack, "validation", seed=1).batch(6)
    assert crops.shape[1:] == (pack_spec(pack).classifier_crop,) * 2 + (1,) and set(labels.tolist()) <= {0, 1, 2}



@needs_packages
def test_classifier_training_puts_a_share_of_sharp_frames_exactly_in_focus():
    """Training draws SHARP_IN_FOCUS of its sharp frames at amount 0; validation stays uniform within each class."""
    bands = pack_spec("fashion-mnist").blur

    def sharp_amounts(split: str) -> np.ndarray:
        amounts, labels = synth.SeveritySource("fashion-mnist", split, seed=3).amounts(6000)
        assert np.all(amounts[labels == 1] > bands.sharp_max)
        return amounts[labels == 0]

    train = sharp_amounts("train")
    assert np.mean(train == 0) == pytest.approx(synth.SHARP_IN_FOCUS, abs=0.03)
    assert np.all(train <= bands.sharp_max)
    assert np.mean(sharp_amounts("validation") == 0) == 0


def test_only_allowlisted_files_of_a_source_are_used(tmp_path, monkeypatch):
    for name in ("photo.jpg", "render.png", "logo.png"):
        cv2.imwrite(str(tmp_path / name), np.full((20, 30, 3), 90, np.uint8))
    source = data.PhotoSource("some-wallpapers", tmp_path, ("photo.jpg", "not-installed.jpg"), "apt")
    monkeypatch.setattr(data, "PHOTO_SOURCES", (source,))
    assert data.source_files(source) == [tmp_path / "photo.jpg"]
    assert data.photo_files("train") + data.photo_files("validation") == [tmp_path / "photo.jpg"]
    monkeypatch.setattr(data, "PHOTO_SOURCES", (data.PhotoSource("absent", tmp_path / "none", ("a.jpg",), "apt"),))
    with pytest.raises(data.DataMissing, match="make data"):
        data.photo_files("train")


def test_split_is_by_name_and_keeps_wallpaper_sizes_and_stereo_pairs_together():
    from pathlib import Path

    plasma = Path("/usr/share/wallpapers/Kite/contents/images")
    assert data.photo_name(plasma / "2560x1600.jpg") == "Kite"
    assert data.split_of(plasma / "2560x1600.jpg") == data.split_of(plasma / "640x480.jpg")
    assert data.photo_name(Path("/home/me/images/cat.png")) == "cat"
    assert data._group(Path("motorcycle_left.png")) == data._group(Path("motorcycle_right.png"))
    # The split depends on the name only, never on the folder or on which other photos are installed.
    assert data.split_of(Path("/a/Garden.jpg")) == data.split_of(Path("/b/c/Garden.jpg"))
    names = [Path(f"scene{i}x.jpg") for i in range(500)]
    assert 0.15 < np.mean([data.split_of(p) == "validation" for p in names]) < 0.25


def test_every_source_allowlist_names_distinct_files():
    from pathlib import Path

    for source in data.PHOTO_SOURCES:
        assert len(set(source.files)) == len(source.files), source.package
        assert all(Path(f).suffix.lower() in data.PHOTO_EXTENSIONS for f in source.files), source.package


@needs_packages
def test_installed_photo_sources_are_complete_and_summarised():
    """Every allowlisted file of an installed package is there (a package update that renames one shows here)."""
    for source in data.PHOTO_SOURCES:
        found = data.source_files(source)
        assert len(found) in (0, len(source.files)), f"{source.package}: {len(found)} of {len(source.files)} files"
    text = data.summary()
    assert "opencv-doc" in text and "total" in text
    train, val = data.photo_files("train"), data.photo_files("validation")
    assert {data._group(p) for p in train}.isdisjoint({data._group(p) for p in val})
