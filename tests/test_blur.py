"""The blur synthesis is the shared definition of 'semi' and 'heavy': its PSFs and determinism are load-bearing."""

import numpy as np
import pytest

from deblurd.optics import blur
from deblurd.restore.packs import pack_spec


@pytest.mark.parametrize("make", [lambda: blur.gaussian_psf(2.5), lambda: blur.disk_psf(3.0, 0.5),
                                  lambda: blur.disk_psf(0.4), lambda: blur.motion_psf(4, 30),
                                  lambda: blur.BlurSpec("defocus", 2.0, 0.5, 1.5, 45).psf()])
def test_psfs_are_normalised_nonnegative_and_centred(make):
    psf = make()
    assert psf.sum() == pytest.approx(1.0, abs=1e-5)
    assert (psf >= 0).all()
    assert psf.shape[0] % 2 == 1 and psf.shape[1] % 2 == 1
    ys, xs = np.indices(psf.shape)
    cy, cx = (psf * ys).sum(), (psf * xs).sum()
    assert cy == pytest.approx(psf.shape[0] // 2, abs=1e-3) and cx == pytest.approx(psf.shape[1] // 2, abs=1e-3)


def _radius_of_gyration(psf: np.ndarray) -> float:
    ys, xs = np.indices(psf.shape)
    c = psf.shape[0] // 2
    return float(np.sqrt((psf * ((ys - c) ** 2 + (xs - c) ** 2)).sum()))


def test_disk_radius_behaves_like_a_disk():
    # A uniform disk of radius r has <d^2> = r^2 / 2; pixel averaging adds 1/12 per axis.
    for r in (2.0, 4.0, 7.0):
        assert _radius_of_gyration(blur.disk_psf(r)) == pytest.approx(np.sqrt(r * r / 2 + 1 / 6), rel=0.03)
    radii = [_radius_of_gyration(blur.disk_psf(r, 0.5)) for r in (1, 2, 3, 5, 7)]
    assert radii == sorted(radii)


def test_gaussian_sigma_matches_its_second_moment():
    psf = blur.gaussian_psf(3.0)
    ys, xs = np.indices(psf.shape)
    c = psf.shape[0] // 2
    assert np.sqrt((psf * (xs - c) ** 2).sum()) == pytest.approx(3.0, rel=0.02)


def test_zero_blur_is_identity():
    img = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    assert np.array_equal(blur.convolve(img, blur.gaussian_psf(0)), img)
    assert blur.disk_psf(0).shape == (1, 1)


def test_synthesis_is_deterministic_for_a_seed_and_varies_across_seeds():
    img = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    spec = pack_spec("photo").blur.spec(3.0, np.random.default_rng(5))
    a = spec.apply(img, np.random.default_rng(2))
    b = spec.apply(img, np.random.default_rng(2))
    c = spec.apply(img, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert np.allclose(a * 255, np.round(a * 255), atol=1e-3), "8-bit quantised"


def test_blur_preserves_mean_and_reduces_detail():
    img = np.random.default_rng(4).random((96, 96)).astype(np.float32)
    out = blur.BlurSpec("defocus", 4.0, quantize=False).apply(img, np.random.default_rng(0))
    assert out.mean() == pytest.approx(img.mean(), abs=0.01)
    assert np.abs(np.diff(out, axis=1)).mean() < 0.3 * np.abs(np.diff(img, axis=1)).mean()


def test_blur_definition_labels_by_amount():
    bands = pack_spec("photo").blur
    assert ([bands.label(a) for a in (0.0, 1.0, 1.5, 3.0, 3.1, 7.0)]
            == ["sharp", "sharp", "semi", "semi", "heavy", "heavy"])
    digits = pack_spec("mnist").blur
    assert digits.label(10) == "semi" and digits.label(26) == "heavy" and digits.label(0) == "sharp"


def test_protocol_matrix_reproduces_the_256_pixel_protocol():
    import cv2

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((28, 28)).astype(np.float32), (0, 0), 1.0)
    for sigma in (10, 26, 50):
        m = blur.protocol_matrix(sigma)
        fast = m @ img @ m.T
        big = cv2.GaussianBlur(cv2.resize(img, (256, 256), interpolation=cv2.INTER_CUBIC), (0, 0), sigma,
                               borderType=cv2.BORDER_REFLECT101)
        slow = cv2.resize(big, (28, 28), interpolation=cv2.INTER_AREA)
        assert np.abs(fast - slow).max() < 2e-3
