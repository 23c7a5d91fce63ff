"""The camera after the lens: colour survives the Bayer round trip, noise grows with gain, JPEG and ISP matter."""

import numpy as np
import pytest

from deblurd.optics import sensor
from deblurd.optics.sensor import SensorProfile

CLEAN = SensorProfile(mosaic=False, noise=False)


def _photo(seed: int = 0, size: int = 96) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return np.clip(cv2.resize(rng.random((12, 12, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC),
                   0, 1)


def test_srgb_round_trip_and_linear_light():
    x = np.linspace(0, 1, 256, dtype=np.float32)
    assert np.allclose(sensor.linear_to_srgb(sensor.srgb_to_linear(x)), x, atol=1e-5)
    assert sensor.srgb_to_linear(np.float32(0.5)) == pytest.approx(0.214, abs=1e-3)


def test_mosaic_is_rggb_and_demosaic_recovers_flat_colour():
    rgb = np.empty((16, 16, 3), np.float32)
    rgb[...] = (0.8, 0.4, 0.1)
    raw = sensor.mosaic(rgb)
    assert raw[0, 0] == pytest.approx(0.8) and raw[0, 1] == raw[1, 0] == pytest.approx(0.4)
    assert raw[1, 1] == pytest.approx(0.1)
    assert np.allclose(sensor.demosaic(raw)[4:-4, 4:-4], (0.8, 0.4, 0.1), atol=1e-3)


def test_clean_capture_is_the_srgb_encoding_quantised():
    light = sensor.srgb_to_linear(_photo())
    out = sensor.capture(light, CLEAN, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == light.shape
    assert np.abs(out - _photo()).max() <= 0.5 / 255 + 1e-5


def test_noise_variance_grows_with_gain():
    grey = np.full((128, 128, 3), 0.18, np.float32)
    spreads = [sensor.capture(grey, SensorProfile(gain=g, mosaic=False), np.random.default_rng(1)).std()
               for g in (1.0, 4.0, 16.0)]
    assert spreads[0] < spreads[1] < spreads[2]
    assert spreads[2] > 2 * spreads[0]


def test_denoise_reduces_noise_and_sharpening_adds_contrast_at_edges():
    grey = np.full((128, 128, 3), 0.18, np.float32)
    noisy = SensorProfile(gain=16.0, mosaic=False)
    denoised = SensorProfile(gain=16.0, mosaic=False, denoise=1.0)
    assert sensor.capture(grey, denoised, np.random.default_rng(1)).std() < sensor.capture(
        grey, noisy, np.random.default_rng(1)).std()
    edge = np.zeros((32, 32, 3), np.float32)
    edge[:, 16:] = 0.5
    sharp = sensor.capture(edge, SensorProfile(mosaic=False, noise=False, sharpen=1.0), np.random.default_rng(0))
    assert sharp[:, 16].max() > sensor.linear_to_srgb(np.float32(0.5)) + 0.02  # overshoot: the ISP's halo


def test_jpeg_quality_changes_the_output():
    light = sensor.srgb_to_linear(_photo(3))
    low, high = (sensor.capture(light, SensorProfile(mosaic=False, noise=False, jpeg_quality=q),
                                np.random.default_rng(0))
                 for q in (30, 95))
    clean = sensor.capture(light, CLEAN, np.random.default_rng(0))
    assert np.abs(low - clean).mean() > np.abs(high - clean).mean() > 0


def test_capture_is_deterministic_under_a_seed():
    light = sensor.srgb_to_linear(_photo(5))
    profile = SensorProfile.draw(np.random.default_rng(7))
    a = sensor.capture(light, profile, np.random.default_rng(11))
    assert np.array_equal(a, sensor.capture(light, profile, np.random.default_rng(11)))
    assert not np.array_equal(a, sensor.capture(light, profile, np.random.default_rng(12)))


def test_draw_covers_the_gain_range_and_mostly_jpeg():
    draws = [SensorProfile.draw(np.random.default_rng(s)) for s in range(200)]
    gains = [d.gain for d in draws]
    assert 1.0 <= min(gains) < 1.5 and 10 < max(gains) <= 16.0
    assert 0.65 < np.mean([d.jpeg_quality is not None for d in draws]) < 0.95
