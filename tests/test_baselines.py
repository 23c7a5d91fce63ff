"""tools/eval/baselines.py: Wiener and Richardson-Lucy given the true PSF, on a real photo blurred by a real disk."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio

from deblurd.optics.blur import convolve, disk_psf
from tools.eval import baselines

SIGMA = 2.0 / 255.0


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skdata.camera()[150:350, 150:390].astype(np.float32) / 255.0


def blurred(truth: np.ndarray, radius: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    psf = disk_psf(radius)
    noisy = convolve(truth, psf) + np.random.default_rng(seed).normal(0, SIGMA, truth.shape)
    return np.clip(noisy, 0, 1).astype(np.float32), psf


def psnr(pred: np.ndarray, truth: np.ndarray, border: int = 0) -> float:
    inner = (slice(border, truth.shape[0] - border), slice(border, truth.shape[1] - border))
    return float(peak_signal_noise_ratio(truth[inner], pred[inner], data_range=1.0))


@pytest.mark.parametrize("radius", [2.0, 5.0])
def test_both_beat_the_blurred_input(photo, radius):
    b, psf = blurred(photo, radius)
    before = psnr(b, photo)
    w = baselines.wiener(b, psf, SIGMA)
    rl = baselines.richardson_lucy(b, psf, 20)
    assert w.shape == rl.shape == photo.shape and w.dtype == rl.dtype == np.float32
    assert psnr(w, photo) > before + 1.0
    assert psnr(rl, photo) > before + 1.0


def test_wiener_borders_do_not_ring(photo):
    """The frame's outer 12 px restore about as well as the whole (no wrap-around artefacts at the edges)."""
    b, psf = blurred(photo, 4.0)
    w = baselines.wiener(b, psf, SIGMA)
    edge = np.ones(photo.shape, bool)
    edge[12:-12, 12:-12] = False
    err_edge = np.mean((w[edge] - photo[edge]) ** 2)
    err_in = np.mean((w[~edge] - photo[~edge]) ** 2)
    assert err_edge < 2.0 * err_in
    assert np.mean((b[edge] - photo[edge]) ** 2) > err_edge


def test_wiener_regularises_more_for_more_noise(photo):
    """The noise sigma steers the filter: told far more noise than there is, Wiener smooths and scores lower."""
    b, psf = blurred(photo, 3.0)
    assert psnr(baselines.wiener(b, psf, SIGMA), photo) > psnr(baselines.wiener(b, psf, 20 * SIGMA), photo)
    with pytest.raises(ValueError, match="noise sigma"):
        baselines.wiener(b, psf, 0.0)


def test_identity_psf_leaves_a_clean_image_nearly_alone(photo):
    out = baselines.wiener(photo, np.ones((1, 1), np.float32), 0.5 / 255)
    assert psnr(out, photo) > 45


def test_best_iterations_picks_from_the_candidates(photo):
    b, psf = blurred(photo, 3.0)
    n = baselines.best_iterations((1, 15), [(photo, b, psf)])
    assert n == 15
    assert set(baselines.baselines(SIGMA, n)) == {"Wiener (true PSF)", "Richardson-Lucy (true PSF)"}


def test_best_sigma_picks_a_working_noise_level_from_the_candidates(photo):
    """Far too little regularisation amplifies the noise; the tuned level is one of the candidates and beats it."""
    b, psf = blurred(photo, 3.0)
    candidates = (0.05 / 255, SIGMA, 40 / 255)
    chosen = baselines.best_sigma(candidates, [(photo, b, psf)])
    assert chosen in candidates and chosen != candidates[0]
    assert psnr(baselines.wiener(b, psf, chosen), photo) > psnr(baselines.wiener(b, psf, candidates[0]), photo) + 1


def test_the_per_pixel_wiener_channel_is_the_disk_filter_where_the_radius_is_on_its_grid(photo):
    """tools/eval/wiener_channel.py's bank blend: at a grid radius it is that radius's filter; between two it lies
    between them; across a radius step each side gets its own radius's filter."""
    from deblurd.optics.wiener import wiener_disk
    from tools.eval import wiener_channel

    image, _ = blurred(photo, 2.0)
    flat = np.full(image.shape, 2.0, np.float32)
    np.testing.assert_allclose(wiener_channel.per_pixel(image, flat, SIGMA), wiener_disk(image, 2.0, SIGMA),
                               atol=1e-6)
    half = wiener_channel.per_pixel(image, flat + 0.25, SIGMA)
    low, high = wiener_disk(image, 2.0, SIGMA), wiener_disk(image, 2.5, SIGMA)
    np.testing.assert_allclose(half, (low + high) / 2, atol=1e-6)
    step = flat.copy()
    step[:, : image.shape[1] // 2] = 0.0
    mixed = wiener_channel.per_pixel(image, step, SIGMA)
    np.testing.assert_allclose(mixed[:, image.shape[1] // 2:], low[:, image.shape[1] // 2:], atol=1e-6)
    np.testing.assert_allclose(mixed[:, : image.shape[1] // 2], image[:, : image.shape[1] // 2], atol=1e-6)


def test_wiener_restores_a_blur_too_large_for_its_usual_fitting_band():
    """A radius-40 disk at 512 px (a 35 px one in a 12 MP still) passes none of LOW_BAND: the signal's amplitude is
    fitted lower down instead of being taken as 0, which returned a flat image."""
    from deblurd.optics import wiener

    truth = skdata.camera().astype(np.float32) / 255.0
    image, psf = blurred(truth, 40.0)
    x = wiener.mirror(image.astype(np.float64))
    usual = (wiener._radial_frequency(x.shape) >= wiener.LOW_BAND[0]) & (np.abs(wiener.otf(psf, x.shape)) > 0.5)
    assert not usual.any()
    gain = (peak_signal_noise_ratio(truth, baselines.wiener(image, psf, SIGMA), data_range=1.0)
            - peak_signal_noise_ratio(truth, image, data_range=1.0))
    assert gain > 3.0
