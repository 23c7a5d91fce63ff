"""`deblurd collect --display`: the framebuffer adapter against a temp sysfs tree and device file, and the loop on
the simulated camera, where the displayed image is the scene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurd.capture.display import FramebufferDisplay, display_images, letterbox
from deblurd.errors import CameraError


def framebuffer(root: Path, width: int, height: int, bits: int) -> tuple[Path, Path]:
    sysfs = root / "sys/class/graphics/fb0"
    sysfs.mkdir(parents=True)
    (sysfs / "virtual_size").write_text(f"{width},{height}\n")
    (sysfs / "bits_per_pixel").write_text(f"{bits}\n")
    device = root / "fb0"
    device.write_bytes(bytes(width * height * bits // 8))
    return device, sysfs


def digit() -> np.ndarray:
    img = np.zeros((28, 28, 3), np.uint8)
    img[4:24, 12:16] = 255
    return img


def test_letterbox_keeps_the_aspect_and_the_pixels_sharp() -> None:
    out = letterbox(digit(), 100, 56)
    assert out.shape == (56, 100, 3)
    assert out[:, :22].max() == 0 and out[:, 78:].max() == 0, "black bars either side of a square image"
    assert set(np.unique(out)) == {0, 255}, "enlarged without smoothing"


@pytest.mark.parametrize("bits", [16, 32])
def test_the_framebuffer_gets_the_whole_screen(tmp_path: Path, bits: int) -> None:
    device, sysfs = framebuffer(tmp_path, 64, 32, bits)
    FramebufferDisplay(device, sysfs).show(digit())
    data = device.read_bytes()
    assert len(data) == 64 * 32 * bits // 8
    if bits == 32:
        screen = np.frombuffer(data, np.uint8).reshape(32, 64, 4)
        assert screen[16, 32, :3].tolist() == [255, 255, 255] and screen[16, 5, :3].tolist() == [0, 0, 0]
    else:
        screen = np.frombuffer(data, "<u2").reshape(32, 64)
        assert screen[16, 32] == 0xFFFF and screen[16, 5] == 0


def test_a_missing_framebuffer_or_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="connect an HDMI screen"):
        FramebufferDisplay(tmp_path / "fb0", tmp_path / "none")
    device, sysfs = framebuffer(tmp_path, 8, 8, 24)
    with pytest.raises(CameraError, match="set 16 or 32"):
        FramebufferDisplay(device, sysfs)
    with pytest.raises(CameraError, match="not a folder of images"):
        display_images(tmp_path / "empty")


def test_collect_shows_each_image_to_the_simulated_camera(tmp_path: Path) -> None:
    shown = tmp_path / "digits"
    shown.mkdir()
    for k, column in enumerate((4, 20)):
        img = np.zeros((28, 28, 3), np.uint8)
        img[2:26, column:column + 4] = 255
        cv2.imwrite(str(shown / f"{k}.png"), img)
    config = tmp_path / "c.toml"
    config.write_text('[camera]\nsource = "sim"\nsim_still_width = 320\n')
    done = subprocess.run([sys.executable, "-m", "deblurd", "collect", "--config", str(config), "--positions", "6",
                           "--display", str(shown), "--interval", "0", "--settle", "0", "--out", str(tmp_path / "p")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert [s["displayed"] for s in manifest["scenes"]] == ["0.png", "1.png"], "one scene per image by default"
    references = [cv2.imread(str(tmp_path / "p" / s["files"][0]["file"]), cv2.IMREAD_GRAYSCALE)
                  for s in manifest["scenes"]]
    columns = [int(np.argmax(r.mean(axis=0))) for r in references]
    assert columns[0] < 160 < columns[1], "each reference shows the bar where its image has it"
    blurred = cv2.imread(str(tmp_path / "p" / manifest["scenes"][0]["files"][1]["file"]), cv2.IMREAD_GRAYSCALE)
    edge = lambda img: float(np.abs(np.diff(img.astype(np.float32), axis=1)).max())  # noqa: E731
    assert edge(blurred) < 0.7 * edge(references[0]), "the bar's edges are defocused at 6 dioptres"
