"""Image files for `deblurd deblur`: damaged files refused, every layout read as it is, EXIF and ICC written back."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_sample
from PIL import Image, ImageCms

from deblurd.capture.camera import SAMPLES_DIR
from deblurd.image_io import CONVERTED, InputError, encode_picture, read_picture

CAMERA_MAKE = 0x010F


def _png(path: Path, pixels: np.ndarray) -> Path:
    """Write with OpenCV (RGB(A) order in, 16-bit kept)."""
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), pixels)
    return path


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """An sRGB profile (made once: a profile records the second it was made)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_metadata(path: Path, rgb: np.ndarray) -> Path:
    exif = Image.Exif()
    exif[CAMERA_MAKE] = "deblurd test camera"
    Image.fromarray(rgb).save(path, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=srgb_profile())
    return path


@pytest.fixture
def sample_bytes() -> bytes:
    return (SAMPLES_DIR / "03-heavy.jpg").read_bytes()


def test_a_truncated_jpeg_is_refused_although_opencv_decodes_it(tmp_path, sample_bytes):
    path = tmp_path / "cut.jpg"
    path.write_bytes(sample_bytes[: len(sample_bytes) // 2])
    assert cv2.imread(str(path)) is not None, "OpenCV fills the missing half with grey"
    with pytest.raises(InputError, match=r"cut.jpg: the image is truncated or damaged .*copy it again"):
        read_picture(path)


def test_a_jpeg_with_damaged_data_is_refused(tmp_path, sample_bytes):
    damaged = bytearray(sample_bytes)
    damaged[3000:3100] = bytes(100)
    path = tmp_path / "damaged.jpg"
    path.write_bytes(bytes(damaged))
    with Image.open(path) as image:
        image.load()  # Pillow decodes it without complaint: only libjpeg's warning tells
    with pytest.raises(InputError, match="damaged.jpg: the image data is damaged .Corrupt JPEG data"):
        read_picture(path)


@pytest.mark.parametrize("damage", ["truncate", "checksum"])
def test_a_damaged_png_is_refused(tmp_path, damage):
    data = bytearray(_png(tmp_path / "good.png", read_sample()).read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="bad.png: .*(truncated|damaged)"):
        read_picture(path)


def test_missing_empty_garbage_and_other_formats(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_picture(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_picture(tmp_path / "empty.jpg")
    (tmp_path / "text.png").write_text("not an image at all")
    with pytest.raises(InputError, match="cannot be read as an image"):
        read_picture(tmp_path / "text.png")
    Image.new("RGB", (16, 16)).save(tmp_path / "a.bmp")
    with pytest.raises(InputError, match="is a BMP image; deblur reads JPEG and PNG"):
        read_picture(tmp_path / "a.bmp")


@pytest.mark.parametrize("dtype,channels,layout", [
    (np.uint16, 3, "16-bit RGB"), (np.uint16, 0, "16-bit grey"), (np.uint8, 4, "8-bit RGBA"),
    (np.uint8, 0, "8-bit grey"), (np.uint16, 4, "16-bit RGBA"),
])
def test_png_layouts_are_read_and_written_as_they_are(tmp_path, dtype, channels, layout):
    rng = np.random.default_rng(0)
    shape = (48, 64, channels) if channels else (48, 64)
    pixels = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    picture = read_picture(_png(tmp_path / "in.png", pixels))
    assert picture.layout == layout and picture.fmt == "png" and picture.conversions == ()
    assert picture.pixels.dtype == dtype and np.array_equal(picture.pixels, pixels)
    (tmp_path / "out.png").write_bytes(encode_picture(picture.pixels, picture, 90))
    assert np.array_equal(read_picture(tmp_path / "out.png").pixels, pixels)


def test_layouts_opencv_changes_come_with_a_warning(tmp_path):
    Image.new("P", (16, 16)).save(tmp_path / "palette.png")
    Image.new("LA", (16, 16)).save(tmp_path / "grey-alpha.png")
    Image.new("CMYK", (16, 16), (10, 20, 30, 40)).save(tmp_path / "print.jpg")
    assert read_picture(tmp_path / "palette.png").conversions == (CONVERTED["P"],)
    assert read_picture(tmp_path / "grey-alpha.png").layout == "8-bit RGBA"
    cmyk = read_picture(tmp_path / "print.jpg")
    assert cmyk.layout == "8-bit RGB" and "written as RGB" in cmyk.conversions[0] and cmyk.icc is None


def test_grey_jpeg_stays_grey(tmp_path):
    grey = cv2.cvtColor(read_sample(), cv2.COLOR_RGB2GRAY)
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=92)
    picture = read_picture(tmp_path / "grey.jpg")
    assert picture.layout == "8-bit grey"
    with Image.open(io.BytesIO(encode_picture(picture.pixels, picture, 92))) as out:
        assert out.mode == "L" and out.size == (grey.shape[1], grey.shape[0])


def test_jpeg_exif_and_icc_profile_are_written_back(tmp_path):
    picture = read_picture(jpeg_with_metadata(tmp_path / "meta.jpg", read_sample()))
    assert picture.exif.startswith(b"Exif\x00\x00") and picture.icc == srgb_profile()
    with Image.open(io.BytesIO(encode_picture(255 - picture.pixels, picture, 90))) as out:
        assert out.format == "JPEG" and out.getexif()[CAMERA_MAKE] == "deblurd test camera"
        assert out.info["icc_profile"] == srgb_profile()


def test_png_exif_and_icc_profile_are_written_back(tmp_path):
    exif = Image.Exif()
    exif[CAMERA_MAKE] = "deblurd test camera"
    Image.fromarray(read_sample()).save(tmp_path / "meta.png", exif=exif.tobytes(), icc_profile=srgb_profile())
    picture = read_picture(tmp_path / "meta.png")
    with Image.open(io.BytesIO(encode_picture(picture.pixels, picture, 90))) as out:
        out.load()
        assert out.getexif()[CAMERA_MAKE] == "deblurd test camera" and out.info["icc_profile"] == srgb_profile()
        assert np.array_equal(np.asarray(out), read_sample())


@pytest.mark.parametrize("suffix", ["png", "jpg", "tif"])
def test_a_bomb_is_refused_from_its_header_by_every_reader(tmp_path, suffix):
    from bombs import BOMBS

    from deblurd.image_io import PixelLimitError, bounded_size, read_rgb

    bomb = BOMBS[suffix](tmp_path / f"bomb.{suffix}")
    for read in (read_picture, read_rgb, bounded_size):
        with pytest.raises(PixelLimitError, match=rf"bomb\.{suffix}: 400\.0 MP, over the limit of 24 MP "
                                                  r"\(camera\.max_image_megapixels\); refused before decoding"):
            read(bomb)


def test_an_image_over_the_limit_but_under_pillows_is_refused_without_pillows_warning(tmp_path):
    import warnings

    from bombs import png_bomb

    from deblurd.image_io import PixelLimitError, bounded_size

    bomb = png_bomb(tmp_path / "big.png", side=10000)  # 100 MP: Pillow itself would only warn
    with warnings.catch_warnings(record=True) as shown:
        with pytest.raises(PixelLimitError, match=r"big\.png: 10000x10000 pixels = 100\.0 MP"):
            bounded_size(bomb)
        assert bounded_size(bomb, max_pixels=100_000_000) == (10000, 10000), "a limit of its own"
    assert shown == []


def test_names_are_shown_with_their_control_characters_escaped():
    from deblurd.log_limit import printable

    assert printable("plain é.jpg") == "plain é.jpg"
    assert printable(Path("a\nb\x1b[2J\u202e\\.png")) == "a\\nb\\x1b[2J\\u202e\\\\.png"
    assert printable(b"raw\xff.jpg") == "raw\\udcff.jpg", "undecodable bytes of a name"
