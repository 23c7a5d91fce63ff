"""The camera after the lens: what a Camera Module 3 frame has been through before a restorer sees it.

Light (linear RGB) lands on an RGGB Bayer mosaic, picks up shot noise (Poisson in photo-electrons, fewer of
them at higher analogue gain) and read noise, is quantised to 10 bits, demosaicked, mildly denoised (more at
high gain, as the ISP does), gamma-encoded to sRGB, sharpened with an unsharp mask and usually stored as JPEG.
Restorers trained without these steps mistake demosaic zippers, noise and sharpening halos for detail.
Blur and noise happen in linear light; everything a user sees is sRGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_RAW_LEVELS = 1023
_RGGB_TO_RGB = cv2.COLOR_BayerBG2RGB_EA
SHARPEN_AMOUNT = (0.2, 1.2)
"""The ISP's unsharp-mask amount a drawn camera gets, uniform in this range."""
SHARPEN_SIGMA = (0.7, 1.5)
"""The ISP's unsharp-mask radius (Gaussian sigma, px) a drawn camera gets, uniform in this range."""
"""OpenCV names a Bayer pattern by the second row's second and third pixels: RGGB is its "BG"."""


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1)."""
    x = np.clip(srgb.astype(np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light to sRGB-encoded values in [0, 1] (clipped: the sensor saturates)."""
    x = np.clip(linear.astype(np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def mosaic(rgb: np.ndarray) -> np.ndarray:
    """Sample an RGB image (HxWx3) on an RGGB Bayer grid: one value per pixel."""
    raw = rgb[..., 1].copy()
    raw[0::2, 0::2] = rgb[0::2, 0::2, 0]
    raw[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return raw


def demosaic(raw: np.ndarray) -> np.ndarray:
    """RGGB raw in [0, 1] back to RGB with OpenCV's edge-aware demosaic on 16-bit data."""
    u16 = np.round(np.clip(raw, 0.0, 1.0) * 65535).astype(np.uint16)
    return cv2.demosaicing(u16, _RGGB_TO_RGB).astype(np.float32) / 65535


@dataclass(frozen=True)
class SensorProfile:
    """One capture's camera settings; None in a step's field skips that step."""

    gain: float = 1.0
    """Analogue gain (1-16 on the IMX708); photo-electrons at white shrink with it, so noise grows."""
    white_electrons: float = 20000.0
    """Photo-electrons at white per working-scale pixel at gain 1 (full resolution binned down to 640 px)."""
    read_electrons: float = 12.0
    """Read noise in electrons per working-scale pixel."""
    denoise: float = 0.0
    """ISP denoise strength 0..1 (bilateral filter scaled to the noise level)."""
    sharpen: float = 0.0
    """Unsharp-mask amount (0 = none; ISPs use about 0.3-1.2)."""
    sharpen_sigma: float = 1.0
    jpeg_quality: int | None = None
    mosaic: bool = True
    noise: bool = True

    @staticmethod
    def draw(rng: np.random.Generator) -> SensorProfile:
        """Daylight to dim indoor gains (log-uniform 1-16), the ISP's usual mild processing, JPEG most of the time."""
        gain = float(np.exp(rng.uniform(0.0, np.log(16.0))))
        jpeg = int(rng.integers(70, 98)) if rng.random() < 0.8 else None
        return SensorProfile(gain, float(rng.uniform(12000, 30000)), float(rng.uniform(6, 20)),
                             float(rng.uniform(0.2, 0.7)), float(rng.uniform(*SHARPEN_AMOUNT)),
                             float(rng.uniform(*SHARPEN_SIGMA)), jpeg)


def add_noise(raw: np.ndarray, sensor: SensorProfile, rng: np.random.Generator) -> np.ndarray:
    """Shot noise (Poisson in electrons) plus Gaussian read noise, then 10-bit quantisation."""
    electrons_at_white = sensor.white_electrons / sensor.gain
    electrons = rng.poisson(np.clip(raw, 0.0, 1.0) * electrons_at_white).astype(np.float32)
    electrons += rng.normal(0.0, sensor.read_electrons, raw.shape).astype(np.float32)
    return np.round(np.clip(electrons / electrons_at_white, 0.0, 1.0) * _RAW_LEVELS) / _RAW_LEVELS


def noise_sigma(sensor: SensorProfile, level: float = 0.18) -> float:
    """Expected noise standard deviation (linear, [0, 1]) at a grey level: what the ISP's denoiser is tuned to."""
    electrons_at_white = sensor.white_electrons / sensor.gain
    return float(np.sqrt(level * electrons_at_white + sensor.read_electrons**2) / electrons_at_white)


def unsharp_mask(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """The ISP's sharpening: add back amount x (image - Gaussian blur of it)."""
    return image + amount * (image - cv2.GaussianBlur(image, (0, 0), sigma))


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode an sRGB image (HxWx3 RGB or HxW grey, float [0, 1]) as a JPEG of the given quality and decode it
    again: what storing a frame does to it (the camera's pipeline here, the seed protocol's synthesis in blur.py)."""
    u8 = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    if u8.ndim == 3:
        u8 = cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    if decoded.ndim == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return decoded.astype(np.float32) / 255


def capture(linear: np.ndarray, sensor: SensorProfile, rng: np.random.Generator) -> np.ndarray:
    """Linear RGB light (HxWx3) through mosaic, noise, demosaic, denoise, gamma, sharpening and JPEG.

    Returns the sRGB frame as float32 in [0, 1], quantised to 8 bits as a stored frame is.
    """
    rgb: np.ndarray = np.clip(linear.astype(np.float32), 0.0, 1.0)
    if sensor.mosaic or sensor.noise:
        raw = mosaic(rgb) if sensor.mosaic else rgb
        raw = add_noise(raw, sensor, rng) if sensor.noise else raw
        rgb = demosaic(raw) if sensor.mosaic else raw
    if sensor.denoise > 0:
        sigma = 3.0 * sensor.denoise * noise_sigma(sensor)
        rgb = cv2.bilateralFilter(rgb, 5, sigma, 1.5)
    srgb = linear_to_srgb(rgb)
    if sensor.sharpen > 0:
        srgb = np.clip(unsharp_mask(srgb, sensor.sharpen, sensor.sharpen_sigma), 0.0, 1.0)
    if sensor.jpeg_quality is not None:
        return jpeg_roundtrip(srgb, sensor.jpeg_quality)
    return (np.round(srgb * 255) / 255).astype(np.float32)
