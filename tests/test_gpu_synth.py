"""tools.data.gpu_synth: the device synthesis means what the CPU synthesis means (deblurd.optics.blur's disk and
convolution), leaves focused samples alone, draws the noise it reports, repeats under a key, and feeds the
non-blind inputs."""

import dataclasses

import cv2
import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from conftest import read_sample  # noqa: E402

from deblurd.optics.blur import convolve, disk_psf  # noqa: E402
from deblurd.optics.lens_psf import LensProfile, lens_psf  # noqa: E402
from deblurd.optics.sensor import linear_to_srgb, srgb_to_linear  # noqa: E402
from tools.data import gpu_synth  # noqa: E402
from tools.data.gpu_synth import DeviceSynth, SynthConfig  # noqa: E402

QUIET = {"sigma": (0.0, 0.0), "photons": None, "exposure": (1.0, 1.0), "quantize": False}
"""No noise, no exposure jitter, no rounding: only the blur changes a pixel."""


def photo(size: int = 96) -> np.ndarray:
    """A bundled replay frame, RGB float in [0, 1], its top-left size x size."""
    return read_sample().astype(np.float32)[:size, :size] / 255


def padded(psf: np.ndarray, half: int) -> np.ndarray:
    out = np.zeros((2 * half + 1,) * 2, np.float32)
    k = psf.shape[0] // 2
    out[half - k: half + k + 1, half - k: half + k + 1] = psf
    return out


def test_disks_equal_deblurds_disk_psf():
    radii = np.array([0.0, 0.1, 0.5, 1.0, 1.7, 2.5, 4.0, 7.3, 12.0, 16.0], np.float32)
    device = np.asarray(gpu_synth.disk_psfs(jnp.asarray(radii), 18))
    for r, psf in zip(radii, device):
        np.testing.assert_allclose(psf, padded(disk_psf(float(r)), 18), atol=1e-4, err_msg=f"radius {r}")


@pytest.mark.parametrize("radius", [1.5, 4.0, 9.0])
def test_fft_blur_equals_cv2_filter2d_with_reflected_borders(radius):
    """Per channel, each with its own radius; within 1/255 everywhere (reflection included), not only inside."""
    image = photo()
    radii = np.array([radius * 0.9, radius, radius * 1.1], np.float32)
    psfs = gpu_synth.disk_psfs(jnp.asarray(radii[None]), 11)
    out = np.asarray(gpu_synth.convolve(jnp.asarray(image[None]), psfs))[0]
    for c, r in enumerate(radii):
        reference = convolve(image[..., c], disk_psf(float(r)))
        assert np.abs(out[..., c] - reference).max() < 1 / 255
        assert not np.allclose(reference, image[..., c], atol=1 / 255)


def test_context_is_used_then_cut():
    """Real surroundings replace reflection: a crop with context blurs like the same crop cut from a larger blur."""
    image = photo()
    psfs = gpu_synth.disk_psfs(jnp.asarray([[5.0, 5.0, 5.0]]), 6)
    whole = np.asarray(gpu_synth.convolve(jnp.asarray(image[None]), psfs))[0]
    inner = np.asarray(gpu_synth.convolve(jnp.asarray(image[None]), psfs, context=20))[0]
    assert inner.shape == (56, 56, 3)
    np.testing.assert_allclose(inner, whole[20:-20, 20:-20], atol=1e-5)


def test_radius_zero_returns_the_input_plus_noise_only():
    image = jnp.asarray(photo()[None].repeat(8, 0))
    config = SynthConfig(max_radius=2.0, sharp_share=1.0, luma=False, **QUIET)
    sample = gpu_synth.degrade(image, jax.random.key(0), config)
    assert np.all(np.asarray(sample.radius) == 0)
    np.testing.assert_array_equal(np.asarray(sample.blurred), np.asarray(image))
    noisy = gpu_synth.degrade(image, jax.random.key(0), SynthConfig(max_radius=2.0, sharp_share=1.0, luma=False,
                                                                     **{**QUIET, "sigma": (0.01, 0.01)}))
    residual = np.asarray(noisy.blurred - image)
    assert abs(residual.std() - 0.01) < 0.001 and abs(residual.mean()) < 0.001


@pytest.mark.parametrize("photons", [None, 500.0])
def test_noise_has_the_drawn_sigma_and_shot_noise_variance(photons):
    """On flat grey 0.4, focused: variance sigma^2 (+ 0.4 / photons), which Sample.sigma reports."""
    grey = jnp.full((16, 64, 64, 1), 0.4)
    config = SynthConfig(max_radius=2.0, sharp_share=1.0, sigma=(0.005, 0.03), photons=photons and (photons, photons),
                         exposure=(1.0, 1.0), quantize=False)
    sample = gpu_synth.degrade(grey, jax.random.key(3), config)
    measured = np.asarray(sample.blurred - grey).reshape(16, -1).std(axis=1)
    expected = np.asarray(sample.sigma)
    np.testing.assert_allclose(measured, expected, rtol=0.05)
    drawn = np.sqrt(expected**2 - (0.4 / photons if photons else 0.0))
    assert drawn.min() >= 0.005 - 1e-4 and drawn.max() <= 0.03 + 1e-4 and np.ptp(drawn) > 0.01


def test_quantised_samples_sit_on_8_bit_levels():
    sample = gpu_synth.degrade(jnp.asarray(photo()[None].repeat(4, 0)), jax.random.key(1), SynthConfig(max_radius=4))
    levels = np.asarray(sample.blurred) * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)


def pool_synth(config: SynthConfig) -> DeviceSynth:
    rgb = read_sample().astype(np.uint8)
    return DeviceSynth([rgb, rgb[:200, :300], cv2.resize(rgb, None, fx=0.5, fy=0.5)], config)


def test_a_key_repeats_its_batch_and_another_key_does_not():
    synth = pool_synth(SynthConfig(patch=48, max_radius=6, chroma=0.05))
    a, b, c = (synth.draw(jax.random.key(k), 8, 3) for k in (7, 7, 8))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))
    assert synth.drawn == 24


def test_shapes_dtypes_and_ranges():
    config = SynthConfig(patch=40, min_radius=1.0, max_radius=4.0, sharp_share=0.25, chroma=0.1)
    synth = pool_synth(config)
    x, y, sample = synth.draw(jax.random.key(0), 64, 3)
    assert x.shape == (64, 40, 40, 3) and y.shape == (64, 40, 40, 1) and x.dtype == y.dtype == jnp.float32
    assert sample.radii.shape == (64, 3) and sample.psfs.shape == (64, 1, 2 * config.halo + 1, 2 * config.halo + 1)
    radius = np.asarray(sample.radius)
    assert 0.1 < np.mean(radius == 0) < 0.45 and radius[radius > 0].min() >= 1.0 and radius.max() <= 4.0
    ratio = np.asarray(sample.radii)[radius > 0] / radius[radius > 0, None]
    assert np.all(np.abs(ratio - 1) <= 0.1 + 1e-6) and np.all(ratio[:, 1] == 1)
    told = np.asarray(sample.told)
    np.testing.assert_allclose(np.asarray(x[..., 1]), np.broadcast_to(told[:, None, None] / 8.0, (64, 40, 40)))
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    colour = pool_synth(SynthConfig(patch=40, max_radius=2.0, luma=False))
    assert colour.draw(jax.random.key(0), 4)[1].shape == (4, 40, 40, 3)
    with pytest.raises(ValueError, match="non-blind inputs are luminance"):
        colour.draw(jax.random.key(0), 4, 2)


def test_crops_come_from_the_pool_flipped_or_turned():
    """With nothing but the crop, every output is one of the 8 dihedral transforms of a window of a photo."""
    rgb = read_sample().astype(np.uint8)[:60, :80]
    synth = DeviceSynth([rgb], SynthConfig(patch=24, max_radius=1.0, sharp_share=1.0, luma=False, **QUIET))
    crops = np.round(np.asarray(synth.draw(jax.random.key(2), 12)[1]) * 255).astype(np.uint8)
    halo = synth.config.halo
    windows = {rgb[y:y + 24, x:x + 24].tobytes() for y in range(halo, 60 - 24 - halo + 1)
               for x in range(halo, 80 - 24 - halo + 1)}
    for crop in crops:
        variants = [np.rot90(c, k) for c in (crop, crop[:, ::-1]) for k in range(4)]
        assert any(np.ascontiguousarray(v).tobytes() in windows for v in variants)


def test_too_small_photos_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="smaller patch or max_radius"):
        DeviceSynth([np.zeros((50, 50, 3), np.uint8)], SynthConfig(patch=48, max_radius=8))


def test_the_wiener_input_restores_what_the_blur_took():
    """Told the true radius and noise, the Wiener channel is closer to the sharp photo than the blurred input."""
    synth = pool_synth(SynthConfig(patch=96, min_radius=2.0, max_radius=5.0, sharp_share=0.0, sigma=(2 / 255, 2 / 255),
                                   photons=None))
    x, y, _ = synth.draw(jax.random.key(4), 8, 3)
    blurred, restored, sharp = (np.asarray(a)[:, 8:-8, 8:-8] for a in (x[..., :1], x[..., 2:], y))
    gain = 10 * np.log10(np.mean((blurred - sharp) ** 2) / np.mean((restored - sharp) ** 2))
    assert gain > 1.0


@pytest.mark.parametrize("radii", [(0.0, 1.0), (2.0, 6.0), (12.0, 16.0)])
def test_the_non_blind_inputs_are_the_channels_the_daemon_builds(radii):
    """What the daemon feeds a non-blind generator (radius_map.generator_input: a disk Wiener of the told radius at
    the manifest's noise level, identity under a quarter pixel), also where the blur is too large for the usual
    fitting band (12-16 px on a 64 px patch) and where it is under a pixel."""
    from deblurd.restore.manifest import RADIUS_SCALE, WIENER_SIGMA
    from deblurd.restore.radius_map import generator_input
    synth = pool_synth(SynthConfig(patch=64, min_radius=radii[0], max_radius=radii[1], sharp_share=0.0, chroma=0.05))
    x, _, sample = synth.draw(jax.random.key(5), 6, 3)
    device, told = np.asarray(x), np.asarray(sample.told)
    assert told.min() >= 0 and np.any(told != np.asarray(sample.radius)), "told as a mapper would: off a little"
    for i in range(6):
        luma = device[i, ..., 0]
        daemon = generator_input(luma, np.full(luma.shape, told[i], np.float32), ("luma", "radius", "wiener"),
                                 RADIUS_SCALE, WIENER_SIGMA)
        np.testing.assert_allclose(device[i], daemon, atol=1e-4)


def test_the_told_radius_is_off_by_the_mappers_typical_error():
    from tools.data.synth import TOLD_ABSOLUTE_ERROR, TOLD_RELATIVE_ERROR
    synth = pool_synth(SynthConfig(patch=32, min_radius=4.0, max_radius=4.0, sharp_share=0.0))
    _, _, sample = synth.draw(jax.random.key(6), 512, 1)
    error = np.asarray(sample.told) - 4.0
    expected = np.hypot(4.0 * TOLD_RELATIVE_ERROR, TOLD_ABSOLUTE_ERROR)
    assert abs(error.mean()) < 0.1 and abs(error.std() - expected) < 0.1 * expected


LENSES = [  # (signed radius, LensProfile, field): soft centre, bright rim in front of focus, cat's eye, all at once
    (3.0, LensProfile(rim=-0.4), (0.0, 0.0)),
    (-2.5, LensProfile(rim=0.8, soften=0.5), (0.0, 0.0)),
    (4.0, LensProfile(cats_eye=0.9), (0.8, -0.6)),
    (5.5, LensProfile(rim=0.6, soften=0.3, cats_eye=0.5), (-1.0, 0.4)),
    (0.6, LensProfile(rim=0.3, soften=0.6), (0.2, 0.2)),
]


@pytest.mark.parametrize("radius,lens,field", LENSES)
def test_lens_psfs_equal_deblurds_lens_psf(radius, lens, field):
    """The device draws the PSF the CPU's realistic synthesis draws, rim sign, softening and cat's eye included
    (the CPU cuts the softening at its own smaller grid: a few 1e-4 of the light)."""
    half = 9
    lenses = gpu_synth.Lenses(*(jnp.asarray([v], jnp.float32) for v in (lens.rim, lens.soften, lens.cats_eye)),
                              jnp.asarray([field], jnp.float32))
    device = np.asarray(gpu_synth.lens_psfs(jnp.asarray([[radius]], jnp.float32), lenses, half))[0, 0]
    cpu = padded(np.asarray(lens_psf(radius, lens, field)), half)
    assert device.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.abs(device - cpu).max() < 5e-4 * cpu.max() + 1e-5


def test_an_ideal_lens_is_the_disk():
    radii = jnp.asarray([[0.0], [1.5], [4.25]], jnp.float32)
    zero = gpu_synth.Lenses(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), jnp.zeros((3, 2)))
    np.testing.assert_allclose(gpu_synth.lens_psfs(radii, zero, 6), gpu_synth.disk_psfs(radii, 6), atol=1e-6)


def test_drawn_lenses_follow_lens_profiles_draw():
    lenses = gpu_synth.draw_lenses(jax.random.key(3), 4000)
    rim, soften, cats = (np.asarray(v) for v in (lenses.rim, lenses.soften, lenses.cats_eye))
    assert rim.min() >= -0.5 and rim.max() <= 0.9 and 0.25 < (rim > 0.2).mean() < 0.35
    assert soften.min() >= 0 and soften.max() <= gpu_synth.SOFTEN_MAX
    assert 0.45 < (cats == 0).mean() < 0.55 and cats.max() <= 0.9
    assert np.abs(np.asarray(lenses.field)).max() <= 1.0


def test_the_device_gamma_is_the_sensors():
    levels = np.linspace(-0.1, 1.1, 1201, dtype=np.float32)
    np.testing.assert_allclose(gpu_synth.srgb_to_linear(jnp.asarray(levels)), srgb_to_linear(levels), atol=1e-6)
    np.testing.assert_allclose(gpu_synth.linear_to_srgb(jnp.asarray(levels)), linear_to_srgb(levels), atol=1e-6)


def test_real_optics_blur_in_linear_light():
    """A black/white edge blurred by a lens in linear light comes out brighter than the same disk in sRGB: a
    highlight spreads its light (why bokeh balls glow); far from the edge nothing changes."""
    edge = np.zeros((1, 64, 64, 1), np.float32)
    edge[:, :, 32:] = 1.0
    config = SynthConfig(patch=64, min_radius=4.0, max_radius=4.0, sharp_share=0.0, luma=False, **QUIET)
    real = dataclasses.replace(config, optics_share=1.0, sharpen=(0.0, 0.0))
    ideal = np.asarray(gpu_synth.degrade(jnp.asarray(edge), jax.random.key(0), config).blurred)[0, :, :, 0]
    lens = np.asarray(gpu_synth.degrade(jnp.asarray(edge), jax.random.key(0), real).blurred)[0, :, :, 0]
    band = slice(26, 38)
    assert lens[20:44, band].mean() > ideal[20:44, band].mean() + 0.05
    np.testing.assert_allclose(lens[:, :20], 0.0, atol=1e-4)
    np.testing.assert_allclose(lens[:, 46:], 1.0, atol=1e-4)


def test_real_optics_sharpen_and_report_the_noise_they_leave():
    """The unsharp mask overshoots a blurred edge as an ISP's does, and Sample.sigma reports the noise left after
    gamma and the mask."""
    edge = np.full((8, 64, 64, 1), 0.2, np.float32)
    edge[:, :, 32:] = 0.8
    config = SynthConfig(patch=64, min_radius=2.0, max_radius=2.0, sharp_share=0.0, luma=False, **QUIET)
    soft = gpu_synth.degrade(jnp.asarray(edge), jax.random.key(1), dataclasses.replace(config, optics_share=1.0,
                                                                                       sharpen=(0.0, 0.0)))
    crisp = gpu_synth.degrade(jnp.asarray(edge), jax.random.key(1), dataclasses.replace(config, optics_share=1.0,
                                                                                        sharpen=(1.0, 1.0)))
    assert float(np.asarray(crisp.blurred).max()) > float(np.asarray(soft.blurred).max()) + 0.02
    flat = jnp.full((8, 64, 64, 1), 0.2, jnp.float32)
    noisy = dataclasses.replace(config, sigma=(0.01, 0.01), optics_share=1.0, sharpen=(0.5, 0.5))
    camera = gpu_synth.degrade(flat, jax.random.key(1), noisy)
    measured = np.asarray(camera.blurred)[:, 8:-8, 8:-8].std(axis=(1, 2, 3))
    reported = np.asarray(camera.sigma)
    assert np.all(reported > 2 * 0.01), "dark grey's linear noise is amplified by gamma and the mask"
    np.testing.assert_allclose(measured, reported, rtol=0.3)


def test_the_optics_share_is_per_sample_and_off_by_default():
    config = SynthConfig(patch=32, min_radius=3.0, max_radius=3.0, sharp_share=0.0, **QUIET)
    crops = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (64, 32 + 2 * 12, 32 + 2 * 12, 1)), jnp.float32)
    half = dataclasses.replace(config, optics_share=0.5, sharpen=(0.0, 0.0))
    plain = np.asarray(gpu_synth.degrade(crops[:, 12:-12, 12:-12], jax.random.key(2), config, context=0).blurred)
    mixed = gpu_synth.degrade(crops[:, 12:-12, 12:-12], jax.random.key(2), half, context=0)
    changed = np.abs(np.asarray(mixed.blurred) - plain).max(axis=(1, 2, 3)) > 1e-3
    assert 0.25 < changed.mean() < 0.75, "about half the samples through the lens and camera"
    assert SynthConfig().optics_share == 0.0 and SynthConfig(optics_share=0.5).halo == SynthConfig().halo + 2
    with pytest.raises(ValueError, match="optics_share"):
        SynthConfig(optics_share=1.5)
