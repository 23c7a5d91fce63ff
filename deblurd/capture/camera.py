"""Where frames come from: the one FrameSource interface and the replay source.

The real camera adapter lives in picamera_source.py (picamera2 is imported only when a camera is opened) and
sources.py picks one of the two, so this module (and every test) runs on a machine without picamera2.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from deblurd.capture.pacing import Pacer
from deblurd.config import PIXEL_LIMIT_KEY
from deblurd.errors import CameraError
from deblurd.frames import Frame, FrameKind
from deblurd.image_io import MAX_IMAGE_PIXELS, PixelLimitError, read_rgb
from deblurd.log_limit import printable

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
REPLAY_CACHE_BYTES = 64_000_000
"""Decoded replay images kept in memory (a small folder loops without decoding again; a large one streams)."""


@runtime_checkable
class FrameSource(Protocol):
    """Continuous RGB frames, full-resolution stills and lens control, whatever the hardware behind it."""

    name: str

    def open(self) -> None: ...

    def read(self, timeout: float) -> Frame: ...

    def capture_still(self) -> Frame: ...

    def set_lens_position(self, dioptres: float) -> float | None: ...

    def lens_range(self) -> tuple[float, float, float] | None: ...

    def autofocus(self) -> float | None: ...

    def close(self) -> None: ...


class ReplaySource:
    """Replays a folder of images or a video file, looped and paced to a frame rate, as if it were a camera.

    Continuous frames are resized to the configured size; stills are the recorded image at its own resolution.
    There is no focus motor, so lens calls report fixed focus. An image over max_pixels (checked from its header)
    or one that cannot be read is skipped with one warning per file, not one per loop.
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int] | None = None, loop: bool = True,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.path = Path(path)
        self.fps = fps
        self.size = size
        self.loop = loop
        self.max_pixels = max_pixels
        self.name = f"replay:{printable(self.path)}"
        self._files: list[Path] = []
        self._video: cv2.VideoCapture | None = None
        self._index = 0
        self._seq = 0
        self._last: np.ndarray | None = None
        self._last_origin = ""
        self._origin = ""
        self._pacer = Pacer(fps)
        self._lock = threading.Lock()
        self._warned_fixed = False
        self._cache: dict[Path, np.ndarray] = {}
        self._cached_bytes = 0
        self._skipped: set[Path] = set()

    def open(self) -> None:
        shown = printable(self.path)
        try:
            if self.path.is_dir():
                self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
                if not self._files:
                    raise CameraError(f"replay folder {shown} holds no images (add .jpg/.png files or set "
                                      f"camera.replay_path)")
            elif self.path.is_file():
                self._open_video()
            else:
                raise CameraError(f"replay path {shown} does not exist (set camera.replay_path to a folder of images "
                                  f"or a video)")
        except OSError as exc:
            raise CameraError(f"cannot read replay path {shown} ({exc.strerror or exc}): make it readable by the "
                              f"daemon's user, or set camera.replay_path to another folder") from exc
        self._pacer = Pacer(self.fps)
        log.info("replaying %s at %.1f fps", shown, self.fps)

    def _open_video(self) -> None:
        shown = printable(self.path)
        self._video = cv2.VideoCapture(str(self.path))
        if not self._video.isOpened():
            raise CameraError(f"cannot open replay video {shown} (check the file, or point camera.replay_path at a "
                              f"folder of images)")
        pixels = int(self._video.get(cv2.CAP_PROP_FRAME_WIDTH)) * int(self._video.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if pixels > self.max_pixels:
            self.close()
            raise CameraError(f"replay video {shown}: frames of {pixels / 1e6:.1f} MP, over the limit of "
                              f"{self.max_pixels / 1e6:g} MP ({PIXEL_LIMIT_KEY}): scale the video down")

    def _next_image(self) -> np.ndarray:
        """The next recorded image; self._origin says where it came from (file name, or video frame number)."""
        if self._video is not None:
            ok, bgr = self._video.read()
            if not ok and self.loop:
                self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self._video.read()
            if not ok:
                raise CameraError(f"replay video {printable(self.path)} has no more frames")
            self._origin = f"{self.path.name}#frame{int(self._video.get(cv2.CAP_PROP_POS_FRAMES)) - 1}"
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for _ in range(len(self._files)):
            if self._index >= len(self._files):
                if not self.loop:
                    break
                self._index = 0
            path = self._files[self._index]
            self._index += 1
            self._origin = path.name
            if path in self._cache:
                return self._cache[path]
            try:
                rgb = read_rgb(path, self.max_pixels)
            except PixelLimitError as exc:
                self._skip(path, f"replay: skipping {exc}")
                continue
            if rgb is None:
                self._skip(path, f"replay: skipping {printable(path)}: missing, unreadable or not an image")
                continue
            self._skipped.discard(path)
            if self._cached_bytes + rgb.nbytes <= REPLAY_CACHE_BYTES:
                self._cache[path] = rgb
                self._cached_bytes += rgb.nbytes
            return rgb
        raise CameraError(f"replay folder {printable(self.path)} has no more readable images")

    def _skip(self, path: Path, message: str) -> None:
        """Warn about a file skipped, once until it is read again (not on every loop over the folder)."""
        if path not in self._skipped:
            self._skipped.add(path)
            log.warning("%s", message)

    def _frame(self, rgb: np.ndarray, kind: FrameKind, origin: str) -> Frame:
        self._seq += 1
        return Frame(rgb, self._seq, time.time(), kind, {"source": self.name, "lens_position": None, "file": origin})

    def read(self, timeout: float) -> Frame:
        """The next image, no sooner than 1/fps after the previous one."""
        with self._lock:
            self._pacer.wait(timeout, "replay")
            rgb = self._next_image()
            self._last, self._last_origin = rgb, self._origin
            if self.size and (rgb.shape[1], rgb.shape[0]) != self.size:
                rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
            return self._frame(rgb.copy(), "continuous", self._origin)

    def capture_still(self) -> Frame:
        """The most recent recorded image at its own resolution (the next one if nothing was read yet)."""
        with self._lock:
            if self._last is None:
                self._last, self._last_origin = self._next_image(), self._origin
            return self._frame(self._last.copy(), "still", self._last_origin)

    def _fixed_focus(self) -> None:
        if not self._warned_fixed:
            log.info("%s has no focus motor: fixed focus", self.name)
            self._warned_fixed = True

    def set_lens_position(self, dioptres: float) -> float | None:
        self._fixed_focus()
        return None

    def lens_range(self) -> tuple[float, float, float] | None:
        return None

    def autofocus(self) -> float | None:
        self._fixed_focus()
        return None

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None
