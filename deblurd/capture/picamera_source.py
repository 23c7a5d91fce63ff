"""The Camera Module 3 through picamera2: continuous video frames, full-resolution stills, manual lens control.

picamera2 and libcamera are imported only when this source is opened, so the package runs without them.
A stalled camera never hangs the daemon: a capture that times out closes the camera and it is reopened
with exponential back-off on later reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

import cv2
import numpy as np

from deblurd.config import CameraConfig
from deblurd.errors import CameraError, CaptureTimeout
from deblurd.frames import Frame, FrameKind

log = logging.getLogger(__name__)

STILL_TIMEOUT_FACTOR = 3.0
"""A still needs a mode switch and a long exposure, so it gets this many capture timeouts."""


def _load_api() -> tuple[Any, Any]:
    from libcamera import controls
    from picamera2 import Picamera2

    return Picamera2, controls


def camera_present() -> bool:
    """True when picamera2 is installed and libcamera lists at least one camera."""
    try:
        picamera2_class, _ = _load_api()
        return bool(picamera2_class.global_camera_info())
    except Exception:  # noqa: BLE001 - no library, no camera stack: both mean "no camera here"
        return False


def _rgb(array: np.ndarray) -> np.ndarray:
    """picamera2's RGB888 arrays hold pixels in B, G, R order (XBGR8888 adds a fourth byte)."""
    return np.ascontiguousarray(cv2.cvtColor(array[:, :, :3], cv2.COLOR_BGR2RGB))


class PicameraSource:
    """FrameSource over picamera2; `api` injects (Picamera2 class, libcamera.controls) for tests."""

    def __init__(self, cfg: CameraConfig, api: tuple[Any, Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.name = "picamera2"
        self._api = api
        self._sleep = sleep
        self._clock = clock
        self._cam: Any = None
        self._still_config: Any = None
        self._range: tuple[float, float, float] | None = None
        self._lens_target: float | None = None
        self._backoff = 1.0
        self._reopen_at = 0.0
        self._seq = 0
        self._warned_fixed = False

    def _classes(self) -> tuple[Any, Any]:
        if self._api is None:
            self._api = _load_api()
        return self._api

    def open(self) -> None:
        picamera2_class, _ = self._classes()
        cameras = picamera2_class.global_camera_info()
        if not cameras:
            raise CameraError("no camera detected: check that the ribbon cable is seated both ends and that "
                              "`rpicam-hello --list-cameras` lists the camera (or set camera.source = \"replay\")")
        try:
            cam = picamera2_class(0)
        except RuntimeError as exc:
            raise CameraError(f"the camera is busy ({exc}): another program holds it; stop that program "
                              f"(another deblurd, rpicam-*, a notebook) and start again") from exc
        try:
            video = cam.create_video_configuration(main={"size": (self.cfg.width, self.cfg.height), "format": "RGB888"},
                                                   controls={"FrameRate": self.cfg.fps})
            cam.configure(video)
            self._still_config = cam.create_still_configuration(main={"format": "RGB888"})
            cam.start()
        except RuntimeError as exc:
            cam.close()
            raise CameraError(f"the camera would not start ({exc}): power-cycle the Pi and check the cable") from exc
        self._cam = cam
        lens = cam.camera_controls.get("LensPosition")
        # picamera2 gives a control's (min, max, default)
        self._range = cast(tuple[float, float, float], tuple(float(v) for v in lens)) if lens else None
        log.info("camera %s open: %dx%d at %.1f fps, lens range %s", cameras[0].get("Model", "?"),
                 self.cfg.width, self.cfg.height, self.cfg.fps, self._range or "none (fixed focus)")
        if self._lens_target is not None:
            self.set_lens_position(self._lens_target)

    def _drop_camera(self, why: str) -> CaptureTimeout:
        """Close a stalled camera and schedule the reopen; returns the error for the caller to raise."""
        try:
            self._cam.close()
        except Exception as exc:  # noqa: BLE001 - a stalled camera may fail to close; we reopen either way
            log.warning("closing the stalled camera failed: %s", exc)
        self._cam = None
        self._reopen_at = self._clock() + self._backoff
        message = f"{why}: closed the camera, reopening in {self._backoff:.0f} s"
        self._backoff = min(self._backoff * 2, self.cfg.reopen_backoff_max_s)
        log.warning(message)
        return CaptureTimeout(message)

    def _ensure_open(self, timeout: float) -> Any:
        if self._cam is not None:
            return self._cam
        wait = self._reopen_at - self._clock()
        if wait > 0:
            self._sleep(min(wait, timeout))
            raise CaptureTimeout(f"camera reopening in {wait:.1f} s")
        try:
            self.open()
        except CameraError as exc:
            self._reopen_at = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2, self.cfg.reopen_backoff_max_s)
            raise CaptureTimeout(f"reopening the camera failed: {exc}") from exc
        return self._cam

    def _frame(self, rgb: np.ndarray, kind: FrameKind, metadata: dict[str, Any]) -> Frame:
        self._seq += 1
        return Frame(rgb, self._seq, time.time(), kind,
                     {"source": self.name, "lens_position": metadata.get("LensPosition", self._lens_target),
                      "exposure_us": metadata.get("ExposureTime"), "analogue_gain": metadata.get("AnalogueGain")})

    def read(self, timeout: float) -> Frame:
        cam = self._ensure_open(timeout)
        try:
            request = cam.wait(cam.capture_request(wait=False), timeout=timeout)
        except TimeoutError:
            raise self._drop_camera(f"no frame within {timeout:.1f} s") from None
        self._backoff = 1.0
        return self._frame_from(request, "continuous")

    def capture_still(self) -> Frame:
        timeout = self.cfg.capture_timeout_s * STILL_TIMEOUT_FACTOR
        cam = self._ensure_open(timeout)
        try:
            request = cam.wait(cam.switch_mode_and_capture_request(self._still_config, wait=False), timeout=timeout)
        except TimeoutError:
            raise self._drop_camera(f"no still within {timeout:.1f} s") from None
        return self._frame_from(request, "still")

    def _frame_from(self, request: Any, kind: FrameKind) -> Frame:
        """Pixels and metadata (exposure, gain, lens) of a completed request, which is always released."""
        try:
            array, metadata = request.make_array("main"), request.get_metadata()
        finally:
            request.release()
        return self._frame(_rgb(array), kind, metadata)

    def lens_range(self) -> tuple[float, float, float] | None:
        return self._range

    def _fixed_focus(self) -> None:
        if not self._warned_fixed:
            log.info("this camera has no focus motor: fixed focus, lens settings are ignored")
            self._warned_fixed = True

    def set_lens_position(self, dioptres: float) -> float | None:
        if self._range is None:
            self._fixed_focus()
            return None
        lo, hi, _ = self._range
        applied = min(max(float(dioptres), lo), hi)
        if applied != dioptres:
            log.info("lens position %.2f dioptres clamped to %.2f (camera range %.2f-%.2f)", dioptres, applied, lo, hi)
        _, controls = self._classes()
        self._cam.set_controls({"AfMode": controls.AfModeEnum.Manual, "LensPosition": applied})
        self._lens_target = applied
        return applied

    def autofocus(self) -> float | None:
        """Run one autofocus cycle, then hold the lens where it settled."""
        if self._range is None:
            self._fixed_focus()
            return None
        _, controls = self._classes()
        self._cam.set_controls({"AfMode": controls.AfModeEnum.Auto})
        if not self._cam.autofocus_cycle():
            log.warning("autofocus did not converge; keeping the position it reached")
        position = self._cam.capture_metadata().get("LensPosition")
        return None if position is None else self.set_lens_position(float(position))

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
