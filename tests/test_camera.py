"""Replay source and the source factory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurd.capture.camera import FrameSource, ReplaySource
from deblurd.capture.pacing import Pacer
from deblurd.capture.sources import open_source
from deblurd.config import CameraConfig
from deblurd.errors import CameraError, CaptureTimeout


def _write_images(folder: Path, n: int, size=(80, 60)) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(n):
        rgb = np.zeros((size[1], size[0], 3), np.uint8)
        rgb[..., 0] = 40 * i
        rgb[..., 2] = 200
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        images.append(rgb)
    return images


def test_replay_folder_loops_in_order_as_rgb(tmp_path):
    images = _write_images(tmp_path / "frames", 3)
    (tmp_path / "frames" / "notes.txt").write_text("not an image")
    source = ReplaySource(tmp_path / "frames", fps=60)
    source.open()
    assert isinstance(source, FrameSource)
    frames = [source.read(1.0) for _ in range(5)]
    assert [f.seq for f in frames] == [1, 2, 3, 4, 5]
    assert all(f.kind == "continuous" for f in frames)
    np.testing.assert_array_equal(frames[0].pixels, images[0])
    np.testing.assert_array_equal(frames[3].pixels, images[0])
    np.testing.assert_array_equal(frames[4].pixels, images[1])
    assert [f.metadata["file"] for f in frames] == ["00.png", "01.png", "02.png", "00.png", "01.png"]
    assert source.capture_still().metadata["file"] == "01.png", "a still is the image read last"


def test_replay_paces_to_fps(tmp_path):
    _write_images(tmp_path / "frames", 2)
    source = ReplaySource(tmp_path / "frames", fps=20)
    source.open()
    start = time.monotonic()
    for _ in range(5):
        source.read(1.0)
    assert time.monotonic() - start >= 4 / 20 - 0.01


def test_a_frame_due_after_the_timeout_is_a_capture_timeout_and_a_stall_is_not_caught_up(tmp_path):
    _write_images(tmp_path / "frames", 2)
    source = ReplaySource(tmp_path / "frames", fps=2)
    source.open()
    source.read(1.0)
    start = time.monotonic()
    with pytest.raises(CaptureTimeout, match=r"replay: next frame due in 0\.[45]\d s"):
        source.read(0.05)
    assert time.monotonic() - start >= 0.05, "the reader waited its timeout, as for a camera"
    pacer = Pacer(10.0, now=100.0)
    pacer.advance(105.0)
    assert pacer.wait_s(105.0) == pytest.approx(0.0), "one frame interval of catch-up by default: no burst"


def test_replay_resizes_continuous_but_still_is_full_resolution(tmp_path):
    _write_images(tmp_path / "frames", 2, size=(160, 120))
    source = ReplaySource(tmp_path / "frames", fps=60, size=(80, 60))
    source.open()
    assert source.read(1.0).pixels.shape == (60, 80, 3)
    still = source.capture_still()
    assert still.kind == "still" and still.pixels.shape == (120, 160, 3)


def test_replay_video_file(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    source = ReplaySource(path, fps=60)
    source.open()
    frames = [source.read(1.0) for _ in range(4)]
    values = [int(f.pixels.mean()) for f in frames]
    assert values[0] < values[1] < values[2] and abs(values[3] - values[0]) < 5
    assert [f.metadata["file"] for f in frames] == ["clip.avi#frame0", "clip.avi#frame1", "clip.avi#frame2",
                                                    "clip.avi#frame0"]
    source.close()


def test_replay_has_fixed_focus(tmp_path):
    _write_images(tmp_path / "frames", 1)
    source = ReplaySource(tmp_path / "frames", fps=10)
    source.open()
    assert source.lens_range() is None
    assert source.set_lens_position(2.0) is None
    assert source.autofocus() is None


def test_replay_errors_name_the_path(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        ReplaySource(tmp_path / "missing", fps=10).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="holds no images"):
        ReplaySource(tmp_path / "empty", fps=10).open()


def test_auto_without_camera_replays_bundled_samples(samples_dir, caplog):
    caplog.set_level("INFO")
    source = open_source(CameraConfig(source="auto", fps=60))
    try:
        assert source.name == f"replay:{samples_dir}"
        assert source.read(1.0).pixels.shape == (480, 640, 3)
    finally:
        source.close()
    assert "no camera found: replaying bundled sample frames" in caplog.text


def test_bundled_samples_are_small_and_described(samples_dir):
    import json

    described = json.loads((samples_dir / "samples.json").read_text())["frames"]
    files = sorted(p.name for p in samples_dir.glob("*.jpg"))
    assert files == sorted(described) and len(files) >= 6
    assert {d["label"] for d in described.values()} == {"sharp", "semi", "heavy"}
    assert all((samples_dir / f).stat().st_size < 85_000 for f in files)


def test_replay_skips_a_missing_file_and_a_bomb_with_one_warning_each_not_one_per_loop(tmp_path, caplog):
    import logging

    from bombs import png_bomb

    _write_images(tmp_path / "frames", 3)
    png_bomb(tmp_path / "frames" / "00-bomb.png")
    source = ReplaySource(tmp_path / "frames", fps=200)
    source.open()
    (tmp_path / "frames" / "01.png").unlink()  # gone after the folder was listed
    with caplog.at_level(logging.WARNING):
        files = [source.read(1.0).metadata["file"] for _ in range(8)]
    assert files == ["00.png", "02.png"] * 4, "the folder loops over what can be read"
    assert caplog.text.count("01.png: missing, unreadable") == 1
    assert caplog.text.count("00-bomb.png: 400.0 MP, over the limit of 24 MP") == 1


def test_replay_honours_the_configured_pixel_limit(tmp_path):
    _write_images(tmp_path / "frames", 2, size=(4000, 3100))  # 12.4 MP
    cfg = CameraConfig(source="replay", replay_path=tmp_path / "frames", fps=60.0, width=64, height=64)
    assert open_source(cfg).read(1.0).metadata["file"] == "00.png"
    small = ReplaySource(tmp_path / "frames", fps=60, max_pixels=12_000_000)
    small.open()
    with pytest.raises(CameraError, match="no more readable images"):
        small.read(1.0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder whatever its mode")
def test_an_unreadable_replay_folder_is_a_camera_error_naming_it(tmp_path):
    folder = tmp_path / "frames"
    _write_images(folder, 1)
    folder.chmod(0)
    try:
        with pytest.raises(CameraError, match=r"cannot read replay path .*frames \(Permission denied\): make it"):
            ReplaySource(folder, fps=10).open()
    finally:
        folder.chmod(0o755)


def test_replay_names_are_escaped_in_its_errors(tmp_path):
    with pytest.raises(CameraError) as caught:
        ReplaySource(tmp_path / "gone\nERROR forged", fps=10).open()
    assert "\n" not in str(caught.value) and "gone\\nERROR forged" in str(caught.value)
