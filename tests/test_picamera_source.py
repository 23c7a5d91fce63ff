"""The picamera2 adapter against a fake with picamera2's method names."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from deblurd.capture.camera import FrameSource
from deblurd.capture.picamera_source import PicameraSource, camera_present
from deblurd.config import CameraConfig
from deblurd.errors import CameraError, CaptureTimeout

CONTROLS = SimpleNamespace(AfModeEnum=SimpleNamespace(Manual="Manual", Auto="Auto"))


class FakeRequest:
    def __init__(self, array, metadata):
        self.array, self.metadata, self.released = array, metadata, False

    def make_array(self, name):
        assert name == "main"
        return self.array

    def get_metadata(self):
        return self.metadata

    def release(self):
        self.released = True


class FakePicamera2:
    """Records calls; `stall` makes waits time out; `busy` makes opening fail like a held camera."""

    cameras = [{"Model": "imx708_wide", "Num": 0}]
    busy = False
    instances: list[FakePicamera2] = []

    def __init__(self, camera_num=0):
        if FakePicamera2.busy:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        self.controls_set: list[dict] = []
        self.configured = None
        self.started = self.closed = False
        self.stall = False
        self.camera_controls = {"LensPosition": (0.0, 15.0, 1.0)}
        self.lens = 1.0
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info():
        return FakePicamera2.cameras

    def create_video_configuration(self, main=None, controls=None):
        return {"use_case": "video", "main": main, "controls": controls}

    def create_still_configuration(self, main=None):
        return {"use_case": "still", "main": main}

    def configure(self, config):
        self.configured = config

    def start(self):
        self.started = True

    def capture_request(self, wait=None):
        assert wait is False
        w, h = self.configured["main"]["size"]
        bgr = np.zeros((h, w, 3), np.uint8)
        bgr[..., 0] = 255  # blue in picamera2's B, G, R byte order
        return ("request", FakeRequest(bgr, {"LensPosition": self.lens, "ExposureTime": 10000}))

    def switch_mode_and_capture_request(self, config, wait=None):
        assert config["use_case"] == "still" and wait is False
        self.still_request = FakeRequest(np.zeros((2592, 4608, 3), np.uint8), {"LensPosition": self.lens,
                                                                               "ExposureTime": 20000})
        return ("request", self.still_request)

    def wait(self, job, timeout=None):
        assert timeout is not None
        if self.stall:
            raise TimeoutError
        return job[1]

    def set_controls(self, controls):
        self.controls_set.append(controls)
        if "LensPosition" in controls:
            self.lens = controls["LensPosition"]

    def autofocus_cycle(self):
        self.lens = 3.5
        return True

    def capture_metadata(self):
        return {"LensPosition": self.lens}

    def close(self):
        self.closed = True


@pytest.fixture(autouse=True)
def _reset_fake():
    FakePicamera2.cameras = [{"Model": "imx708_wide", "Num": 0}]
    FakePicamera2.busy = False
    FakePicamera2.instances = []


class Clock:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def _source(clock=None, **cfg) -> PicameraSource:
    clock = clock or Clock()
    return PicameraSource(CameraConfig(**cfg), api=(FakePicamera2, CONTROLS), sleep=clock.sleep, clock=clock)


def test_reads_rgb_video_frames_at_configured_size():
    source = _source(width=320, height=240)
    source.open()
    assert isinstance(source, FrameSource)
    cam = FakePicamera2.instances[0]
    assert cam.configured["main"] == {"size": (320, 240), "format": "RGB888"} and cam.started
    frame = source.read(1.0)
    assert frame.pixels.shape == (240, 320, 3) and frame.kind == "continuous"
    assert tuple(frame.pixels[0, 0]) == (0, 0, 255)
    assert frame.metadata["lens_position"] == 1.0 and frame.metadata["exposure_us"] == 10000


def test_still_is_full_resolution():
    source = _source()
    source.open()
    still = source.capture_still()
    assert still.kind == "still" and still.pixels.shape == (2592, 4608, 3)
    assert still.metadata["exposure_us"] == 20000 and still.metadata["lens_position"] == 1.0
    assert FakePicamera2.instances[0].still_request.released, "the still's buffers go back to the camera"


def test_lens_position_is_manual_and_clamped():
    source = _source()
    source.open()
    assert source.lens_range() == (0.0, 15.0, 1.0)
    assert source.set_lens_position(40.0) == 15.0
    assert FakePicamera2.instances[0].controls_set[-1] == {"AfMode": "Manual", "LensPosition": 15.0}
    assert source.set_lens_position(2.5) == 2.5


def test_autofocus_returns_the_settled_position_and_holds_it():
    source = _source()
    source.open()
    assert source.autofocus() == 3.5
    assert FakePicamera2.instances[0].controls_set[-1] == {"AfMode": "Manual", "LensPosition": 3.5}


def test_fixed_focus_camera_reports_none(caplog):
    caplog.set_level("INFO")
    source = _source()
    source.open()
    FakePicamera2.instances[0].camera_controls = {}
    source._range = None
    assert source.set_lens_position(1.0) is None and source.autofocus() is None
    assert "fixed focus" in caplog.text


def test_missing_camera_is_said_plainly():
    FakePicamera2.cameras = []
    with pytest.raises(CameraError, match="no camera detected.*ribbon cable"):
        _source().open()


def test_busy_camera_is_said_plainly():
    FakePicamera2.busy = True
    with pytest.raises(CameraError, match="camera is busy.*another program holds it"):
        _source().open()


def test_timeout_closes_and_reopens_with_exponential_backoff():
    clock = Clock()
    source = _source(clock, reopen_backoff_max_s=4)
    source.open()
    FakePicamera2.instances[0].stall = True
    with pytest.raises(CaptureTimeout, match="reopening in 1 s"):
        source.read(0.5)
    assert FakePicamera2.instances[0].closed
    FakePicamera2.busy = True
    with pytest.raises(CaptureTimeout, match="reopening in"):
        source.read(0.5)  # waits (bounded by the timeout) instead of hammering the camera
    clock.now += 1
    with pytest.raises(CaptureTimeout, match="reopening the camera failed"):
        source.read(0.5)
    clock.now += 2
    FakePicamera2.busy = False
    assert source.read(0.5).pixels.shape == (480, 640, 3)
    assert len(FakePicamera2.instances) == 2
    assert max(clock.slept) <= 0.5


def test_backoff_is_capped():
    clock = Clock()
    source = _source(clock, reopen_backoff_max_s=2)
    source.open()
    FakePicamera2.instances[0].stall = True
    with pytest.raises(CaptureTimeout):
        source.read(0.5)
    FakePicamera2.busy = True
    waits = []
    for _ in range(5):
        clock.now += 100
        with pytest.raises(CaptureTimeout):
            source.read(0.5)
        waits.append(source._reopen_at - clock.now)
    assert waits == [2, 2, 2, 2, 2]


def test_lens_position_survives_a_reopen():
    clock = Clock()
    source = _source(clock)
    source.open()
    source.set_lens_position(4.0)
    FakePicamera2.instances[0].stall = True
    with pytest.raises(CaptureTimeout):
        source.read(0.5)
    clock.now += 5
    source.read(0.5)
    assert FakePicamera2.instances[1].controls_set[-1]["LensPosition"] == 4.0


def test_no_picamera2_means_no_camera():
    assert camera_present() is False
