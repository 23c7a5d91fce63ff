"""Lens PSFs beyond the ideal disk: still normalised and centred, with the rim, colour and cat's eye they promise."""

import numpy as np
import pytest

from deblurd.optics.blur import disk_psf
from deblurd.optics.lens_psf import IDEAL_LENS, LensProfile, lens_psf, lens_psf_rgb


def _centroid(psf: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(psf.shape)
    return float((psf * ys).sum()), float((psf * xs).sum())


def _spread(psf: np.ndarray) -> float:
    """Radius of gyration: sqrt(<d^2>), r / sqrt(2) for a uniform disk of radius r."""
    ys, xs = np.indices(psf.shape)
    c = psf.shape[0] // 2
    return float(np.sqrt((psf * ((ys - c) ** 2 + (xs - c) ** 2)).sum()))


def _ring_share(psf: np.ndarray, radius: float) -> float:
    """Share of the light in the outer third of the disk."""
    ys, xs = np.indices(psf.shape)
    c = psf.shape[0] // 2
    return float(psf[np.hypot(ys - c, xs - c) > 2 * radius / 3].sum())


LENSES = [IDEAL_LENS, LensProfile(rim=0.8, soften=0.4), LensProfile(rim=-0.5, chroma=(0.05, 0.0, -0.04)),
          LensProfile(rim=0.3, cats_eye=0.9)]


@pytest.mark.parametrize("lens", LENSES)
@pytest.mark.parametrize("radius", [0.6, 3.0, -7.5, 18.0])
@pytest.mark.parametrize("field", [(0.0, 0.0), (0.9, -0.7)])
def test_psfs_are_normalised_nonnegative_odd_and_centred(lens, radius, field):
    for psf in lens_psf_rgb(radius, lens, field):
        assert psf.sum() == pytest.approx(1.0, abs=1e-5) and (psf >= 0).all()
        assert psf.shape[0] % 2 == 1 and psf.shape[0] == psf.shape[1]
        cy, cx = _centroid(psf)
        assert cy == pytest.approx(psf.shape[0] // 2, abs=1e-3) and cx == pytest.approx(psf.shape[1] // 2, abs=1e-3)


def test_radius_zero_is_the_identity_in_every_channel_whatever_the_lens():
    for lens in LENSES:
        for psf in lens_psf_rgb(0.0, lens, (1.0, 1.0)):
            assert psf.shape == (1, 1) and psf[0, 0] == 1.0


def test_the_ideal_lens_is_the_package_disk():
    assert np.allclose(lens_psf(5.0), disk_psf(5.0), atol=1e-6)


def test_rim_moves_light_outwards_behind_focus_and_inwards_in_front():
    ideal, lens = _ring_share(lens_psf(9.0), 9.0), LensProfile(rim=0.8)
    assert _ring_share(lens_psf(9.0, lens), 9.0) > ideal + 0.1
    assert _ring_share(lens_psf(-9.0, lens), 9.0) < ideal - 0.1
    assert np.allclose(lens_psf(-9.0, IDEAL_LENS), lens_psf(9.0, IDEAL_LENS))


def test_colour_channels_get_their_own_radius():
    red, green, blue = (_spread(p) for p in lens_psf_rgb(10.0, LensProfile(chroma=(0.08, 0.0, -0.08))))
    assert red == pytest.approx(1.08 * green, rel=0.02) and blue == pytest.approx(0.92 * green, rel=0.02)


def test_cats_eye_narrows_the_psf_along_the_radius_towards_the_corner():
    lens = LensProfile(cats_eye=1.0)
    centre, corner = lens_psf(10.0, lens, (0.0, 0.0)), lens_psf(10.0, lens, (0.0, 1.0))
    assert np.allclose(centre, lens_psf(10.0))
    width_radial = (corner.sum(axis=0) > 1e-4).sum()
    width_tangential = (corner.sum(axis=1) > 1e-4).sum()
    assert width_radial < 0.8 * width_tangential


def test_draw_is_deterministic_and_valid():
    draws = [LensProfile.draw(np.random.default_rng(s)) for s in range(50)]
    assert draws[:5] == [LensProfile.draw(np.random.default_rng(s)) for s in range(5)]
    assert any(d.rim > 0.2 for d in draws) and any(d.rim < 0 for d in draws) and any(d.cats_eye > 0 for d in draws)
    with pytest.raises(ValueError):
        LensProfile(rim=-1.5)
