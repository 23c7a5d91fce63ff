"""Decompression bombs for the hostile-input tests: small on disk, 20000x20000 (400 MP) in the header.

The PNG and the TIFF are real images that decode to 400 MP of 1-bit grey (50 MB of zeros, deflated to about
50 KB); the JPEG is a small one whose frame header claims 20000x20000 (libjpeg would allocate the whole frame and
fill it). Decoded as RGB, each would take 1.2 GB.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 20000
"""Width and height each bomb claims."""


def _deflated_zeros(rows: int, row_bytes: int) -> bytes:
    packer = zlib.compressobj(9)
    row = bytes(row_bytes)
    return b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, side: int = SIDE) -> Path:
    """A valid 1-bit grey PNG of side x side pixels, all black."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    body = _deflated_zeros(side, 1 + (side + 7) // 8)  # each row: filter byte 0, then the packed pixels
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    return path


def tiff_bomb(path: Path, side: int = SIDE) -> Path:
    """A valid 1-bit grey TIFF of side x side pixels in one deflated strip."""
    body = _deflated_zeros(side, (side + 7) // 8)
    short, long = 3, 4
    tags = [(256, long, side), (257, long, side), (258, short, 1), (259, short, 8), (262, short, 1),
            (273, long, 0), (277, short, 1), (278, long, side), (279, long, len(body))]
    ifd_size = 2 + 12 * len(tags) + 4
    data_at = 8 + ifd_size
    entries = b"".join(struct.pack("<HHII", tag, kind, 1, data_at if tag == 273 else value)
                       if kind == long else struct.pack("<HHIHH", tag, kind, 1, value, 0) for tag, kind, value in tags)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + entries
                     + struct.pack("<I", 0) + body)
    return path


def jpeg_bomb(path: Path, side: int = SIDE) -> Path:
    """A 16x16 JPEG whose frame header (SOF0) says side x side."""
    out = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(out, "JPEG", quality=90)
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)  # after the marker, length and precision
    path.write_bytes(bytes(data))
    return path


BOMBS = {"png": png_bomb, "jpg": jpeg_bomb, "tif": tiff_bomb}
"""Suffix -> maker."""
