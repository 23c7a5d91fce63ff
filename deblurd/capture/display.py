"""A screen in front of the camera, for `deblurd collect --display`: each image shown full screen, then captured.

The real adapter writes the Pi's HDMI framebuffer (/dev/fb0, sized and formatted as sysfs says: 16-bit RGB565 or
32-bit BGRA), letterboxed with the aspect kept; small images such as 28x28 digits are enlarged without smoothing.
On the simulated camera the "display" is the scene itself (SimCamera.show).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from deblurd.capture.camera import IMAGE_EXTENSIONS
from deblurd.errors import CameraError
from deblurd.image_io import read_rgb


class Display(Protocol):
    def show(self, rgb: np.ndarray) -> None: ...


def display_images(folder: Path) -> list[Path]:
    """The images of a folder, in name order; CameraError when there are none."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
    if not files:
        raise CameraError(f"--display {folder}: not a folder of images (.png/.jpg); export the digits to show "
                          f"as image files there")
    return files


def read_display_image(path: Path) -> np.ndarray:
    """An image to show, as RGB; CameraError names one that cannot be read."""
    rgb = read_rgb(path)
    if rgb is None:
        raise CameraError(f"cannot read display image {path} (replace or remove it)")
    return rgb


def letterbox(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The image as large as fits a width x height screen, aspect kept, centred on black."""
    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    sharp_pixels = cv2.INTER_NEAREST if scale >= 2 else cv2.INTER_AREA
    fitted = cv2.resize(rgb, size, interpolation=sharp_pixels)
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[y:y + size[1], x:x + size[0]] = fitted
    return canvas


class FramebufferDisplay:
    """Full-screen images on a Linux framebuffer (the Pi's HDMI output on the console)."""

    def __init__(self, device: Path = Path("/dev/fb0"), sysfs: Path = Path("/sys/class/graphics/fb0")) -> None:
        self.device = Path(device)
        try:
            width, height = (int(v) for v in (sysfs / "virtual_size").read_text().split(","))
            self.bits = int((sysfs / "bits_per_pixel").read_text())
        except (OSError, ValueError) as exc:
            raise CameraError(f"no framebuffer at {sysfs} ({exc}): connect an HDMI screen and run on the Pi "
                              f"(the console, not a desktop session)") from None
        if self.bits not in (16, 32):
            raise CameraError(f"framebuffer {self.device} uses {self.bits} bits per pixel; set 16 or 32 "
                              f"(framebuffer_depth in /boot/firmware/config.txt)")
        self.size = (width, height)

    def pixels(self, rgb: np.ndarray) -> bytes:
        """The screen's bytes for an image: RGB565 little-endian or BGRA."""
        canvas = letterbox(rgb, *self.size)
        if self.bits == 32:
            return cv2.cvtColor(canvas, cv2.COLOR_RGB2BGRA).tobytes()
        r, g, b = (canvas[..., i].astype(np.uint16) for i in range(3))
        return ((r >> 3) << 11 | (g >> 2) << 5 | (b >> 3)).astype("<u2").tobytes()

    def show(self, rgb: np.ndarray) -> None:
        try:
            with open(self.device, "r+b", buffering=0) as fb:
                fb.write(self.pixels(rgb))
        except OSError as exc:
            raise CameraError(f"cannot write the framebuffer {self.device} ({exc}): add the user to the video "
                              f"group (sudo usermod -aG video $USER)") from None
