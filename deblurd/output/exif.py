"""EXIF for a still's JPEGs: what a photographer's tools read (orientation, exposure, gain, focus, time).

OpenCV writes JPEGs without EXIF, so the segment is built with Pillow and spliced in after the JPEG's start
marker; the pixels are not re-encoded. The lens position (dioptres) goes in as the subject distance (metres,
1 / dioptres; 0 dioptres is infinity) and, exactly, in the user comment.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

ORIENTATION, SOFTWARE, DATE_TIME = 0x0112, 0x0131, 0x0132
EXIF_IFD = 0x8769
EXPOSURE_TIME, ISO, DATE_TIME_ORIGINAL, SUBJECT_DISTANCE, USER_COMMENT = 0x829A, 0x8827, 0x9003, 0x9206, 0x9286
INFINITY = 0xFFFFFFFF
"""EXIF's subject distance for infinity."""
_SOI, _APP1 = b"\xff\xd8", b"\xff\xe1"


def exif_segment(metadata: dict[str, Any], captured_at: float, orientation: int = 1) -> bytes:
    """The APP1 segment for a still captured at `captured_at` with the camera's metadata (exposure_us,
    analogue_gain, lens_position); fields the camera did not report are left out."""
    exif = Image.Exif()
    stamp = datetime.fromtimestamp(captured_at).strftime("%Y:%m:%d %H:%M:%S")
    exif[ORIENTATION], exif[SOFTWARE], exif[DATE_TIME] = orientation, "deblurd", stamp
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[DATE_TIME_ORIGINAL] = stamp
    exposure_us: float | None = metadata.get("exposure_us")
    if exposure_us:
        ifd[EXPOSURE_TIME] = IFDRational(int(exposure_us), 1_000_000)
    gain: float | None = metadata.get("analogue_gain")
    if gain:
        ifd[ISO] = int(round(100 * gain))
    lens: float | None = metadata.get("lens_position")
    if lens is not None:
        ifd[SUBJECT_DISTANCE] = IFDRational(round(1000 / lens), 1000) if lens > 0 else IFDRational(INFINITY, 1)
        ifd[USER_COMMENT] = b"ASCII\x00\x00\x00" + json.dumps({"lens_position_dioptres": lens}).encode()
    payload = exif.tobytes()
    return _APP1 + (len(payload) + 2).to_bytes(2, "big") + payload


def with_exif(jpeg: bytes, segment: bytes) -> bytes:
    """The JPEG with the EXIF segment right after its start marker."""
    if not jpeg.startswith(_SOI):
        raise ValueError("not a JPEG: it does not start with the SOI marker")
    return _SOI + segment + jpeg[2:]
