"""Image files: read what a JPEG or PNG really holds for `deblurd deblur`, refuse a damaged one, and write the
result in the same layout (bit depth, alpha, grey) with its EXIF and ICC profile; and read_rgb, the one way the
rest of the code (replay, the simulated camera, calibration, the tools) reads a photo as RGB.

Every image is bounded in pixels before it is decoded (bounded_size): Pillow's Image.open reads only the header,
so a file that is small on disk but huge when decoded (a decompression bomb) is refused with PixelLimitError and
costs no memory. The limit is camera.max_image_megapixels, at most Pillow's own warning limit, so Pillow's
DecompressionBombWarning could only repeat a refusal (and print through a progress bar): it is silenced here, and
its DecompressionBombError (beyond twice that limit) becomes a PixelLimitError.

OpenCV decodes every layout (16-bit colour too, which Pillow cuts to 8 bits) but decodes a truncated or damaged
JPEG with a grey fill and only libjpeg's warning on stderr. So Pillow decodes each file fully first (it raises on
truncation and on PNG checksum errors), and libjpeg's warnings during OpenCV's decode are collected and refused.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from deblurd.config import MAX_IMAGE_MEGAPIXELS, PIXEL_LIMIT_KEY
from deblurd.errors import InputError
from deblurd.log_limit import printable

FORMATS = {"JPEG": "jpg", "PNG": "png"}
"""Pillow's format name -> the suffix of results."""
CONVERTED = {"P": "the restored image is written as RGB (palette colours cannot hold a restoration)",
             "PA": "the restored image is written as RGBA (palette colours cannot hold a restoration)",
             "LA": "the restored image is written as RGBA (grey with alpha is read as RGBA)",
             "La": "the restored image is written as RGBA (grey with alpha is read as RGBA)",
             "CMYK": "the restored image is written as RGB (its ICC profile, made for CMYK, is dropped)",
             "1": "the restored image is written as 8-bit grey (a 1-bit image cannot hold a restoration)"}
"""Pillow modes that OpenCV reads as another layout, with the note a user sees when a restoration is written;
every other layout is kept (and a pass-through is the file itself, byte for byte)."""
DAMAGE_WARNINGS = ("Corrupt JPEG data", "Premature end of JPEG file", "libpng error", "Invalid SOS parameters")
"""libjpeg's and libpng's messages for data they decoded around (a grey fill, a half image)."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXIF_HEADER = b"Exif\x00\x00"
MAX_IMAGE_PIXELS = int(MAX_IMAGE_MEGAPIXELS * 1e6)
"""The default limit, for callers without a config (camera.max_image_pixels is the configured one)."""


class PixelLimitError(InputError):
    """An image whose header says it holds more pixels than the limit: refused before it is decoded."""


def _over_limit(name: object, max_pixels: int, size: tuple[int, int] | None, pixels: int) -> PixelLimitError:
    shape = f"{size[0]}x{size[1]} pixels = " if size else ""
    return PixelLimitError(f"{printable(name)}: {shape}{pixels / 1e6:.1f} MP, over the limit of "
                           f"{max_pixels / 1e6:g} MP ({PIXEL_LIMIT_KEY}); refused before decoding: shrink the image, "
                           f"or raise {PIXEL_LIMIT_KEY} if this device has the memory for it")


def _open_bounded(source: IO[bytes], name: object, max_pixels: int) -> Image.Image:
    """Pillow's Image.open (the header only, nothing decoded yet), refused when over max_pixels."""
    try:
        with warnings.catch_warnings():  # here, not module-wide: a caller's catch_warnings would drop that filter
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise _over_limit(name, max_pixels, None, pixels) from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _over_limit(name, max_pixels, (width, height), width * height)
    return image


def bounded_size(source: Path | bytes, max_pixels: int = MAX_IMAGE_PIXELS,
                 name: object = None) -> tuple[int, int]:
    """An image's (width, height) from its header, without decoding it. PixelLimitError when it holds more than
    max_pixels; InputError when no image header can be read (it could not be bounded, so it is not decoded)."""
    name = source if name is None and isinstance(source, Path) else name or "image"
    try:
        with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as file, \
                _open_bounded(file, name, max_pixels) as image:
            return image.size
    except (UnidentifiedImageError, SyntaxError, OSError, ValueError) as exc:
        raise InputError(f"{printable(name)}: cannot be read as an image ({exc})") from exc


@dataclass(frozen=True)
class Picture:
    """Pixels as the file holds them (HxW grey, HxWx3 RGB or HxWx4 RGBA; uint8 or uint16) and what to keep."""

    pixels: np.ndarray
    fmt: str
    data: bytes = b""
    """The file as read, for a pass-through that copies it byte for byte."""
    exif: bytes | None = None
    icc: bytes | None = None
    conversions: tuple[str, ...] = ()
    """How a restoration of this file changes its layout (CONVERTED): said only when one is written."""

    @property
    def layout(self) -> str:
        """'16-bit RGBA', '8-bit grey'...: the layout a restoration is written in."""
        channels = "grey" if self.pixels.ndim == 2 else {3: "RGB", 4: "RGBA"}[self.pixels.shape[2]]
        return f"{self.pixels.dtype.itemsize * 8}-bit {channels}"


@contextmanager
def _decoder_messages() -> Iterator[list[str]]:
    """What the C decoders print on file descriptor 2 while the block runs, instead of the user's terminal."""
    messages: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            messages.extend(sink.read().decode(errors="replace").splitlines())


def _opencv_layout(data: bytes) -> np.ndarray:
    """OpenCV's decode (BGR order turned into RGB), refusing what libjpeg or libpng only warned about."""
    with _decoder_messages() as messages:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    damage = [m for m in messages if m.startswith(DAMAGE_WARNINGS)]
    if pixels is None or damage:
        raise InputError(f"the image data is damaged ({'; '.join(damage) or 'the decoder gave up'}); "
                         f"copy the file again from its source")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    if pixels.ndim == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return pixels


def read_picture(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Picture:
    """A JPEG or PNG file fully decoded; InputError says what is wrong with it and what to do (PixelLimitError:
    more pixels than max_pixels, refused from its header)."""
    shown = printable(path)
    if not path.is_file():
        raise InputError(f"{shown}: no such file (check the path)")
    data = path.read_bytes()
    if not data:
        raise InputError(f"{shown}: the file is empty (0 bytes); copy it again from its source")
    try:
        with _open_bounded(io.BytesIO(data), path, max_pixels) as image:
            fmt = FORMATS.get(image.format or "")
            if fmt is None:
                raise InputError(f"{shown}: is a {image.format} image; deblur reads JPEG and PNG (convert it first)")
            mode, exif, icc = image.mode, image.info.get("exif"), image.info.get("icc_profile")
            image.load()
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise InputError(f"{shown}: cannot be read as an image; it is damaged or not a JPEG/PNG") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{shown}: the image is truncated or damaged ({exc}); copy it again from its source") from exc
    try:
        pixels = _opencv_layout(data)
    except InputError as exc:
        raise InputError(f"{shown}: {exc}") from exc
    warning = CONVERTED.get(mode, "")
    if mode == "CMYK":
        icc = None
    if isinstance(exif, bytes) and not exif.startswith(EXIF_HEADER):
        exif = EXIF_HEADER + exif
    return Picture(pixels, fmt, data, exif or None, icc or None, (warning,) if warning else ())


def read_rgb(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray | None:
    """An image file as RGB uint8 (HxWx3, as OpenCV decodes it: 8-bit, alpha dropped, grey spread to three
    channels); None when the file is missing or cannot be decoded, so the caller names the fix that fits it.
    PixelLimitError when its header says it holds more than max_pixels (it is not decoded)."""
    try:
        bounded_size(path, max_pixels)
    except PixelLimitError:
        raise
    except InputError:
        return None
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb8(pixels: np.ndarray) -> np.ndarray:
    """An RGB uint8 view of any layout, for pictures of the result (the blur-map overlay)."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(pixels[:, :, :3])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_metadata(png: bytes, exif: bytes | None, icc: bytes | None) -> bytes:
    """The PNG with an iCCP and an eXIf chunk right after IHDR (both must come before the image data)."""
    chunks = b""
    if icc:
        chunks += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        chunks += _png_chunk(b"eXIf", exif.removeprefix(EXIF_HEADER))
    ihdr_end = len(PNG_SIGNATURE) + 8 + struct.unpack(">I", png[8:12])[0] + 4
    return png[:ihdr_end] + chunks + png[ihdr_end:]


def encode_picture(pixels: np.ndarray, like: Picture, jpeg_quality: int) -> bytes:
    """`pixels` (the layout of `like`) as a file of like's format, carrying its EXIF and ICC profile."""
    if like.fmt == "jpg":
        out = io.BytesIO()
        extra = {k: v for k, v in (("exif", like.exif), ("icc_profile", like.icc)) if v}
        Image.fromarray(pixels).save(out, "JPEG", quality=jpeg_quality, **extra)
        return out.getvalue()
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"could not encode a {pixels.dtype} {pixels.shape} image as PNG")
    return _png_with_metadata(buf.tobytes(), like.exif, like.icc)
