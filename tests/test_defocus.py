"""Layered, spatially varying defocus: exact where in focus, occlusion at layer edges, a truthful radius map."""

import cv2
import numpy as np
import pytest

from deblurd.optics.blur import convolve, disk_psf
from deblurd.optics.defocus import Layer, SceneLayout, SceneObject, degrade, radius_ladder, render
from deblurd.optics.lens_psf import LensProfile


def _texture(size: int = 96, seed: int = 0) -> np.ndarray:
    """Linear-light RGB with detail at every scale (a blur is easy to see in it)."""
    rng = np.random.default_rng(seed)
    fine = rng.random((size, size, 3)).astype(np.float32)
    coarse = cv2.resize(rng.random((8, 8, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(0.5 * fine + 0.5 * coarse, 0, 1)


def _half_plane(size: int, column: int) -> np.ndarray:
    alpha = np.zeros((size, size), np.float32)
    alpha[:, :column] = 1.0
    return alpha


def _detail(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image, axis=1)).mean())


def test_radius_zero_is_the_identity_before_the_sensor():
    image = _texture()
    layers = [Layer(np.ones((96, 96), np.float32), 0.0), Layer(_half_plane(96, 40), 0.0)]
    out, radius = render(image, layers, LensProfile(rim=0.7, soften=0.5, chroma=(0.05, 0, -0.05), cats_eye=1), (1, 1))
    assert np.allclose(out, image, atol=1e-5) and not radius.any()


def test_a_flat_layer_is_the_plain_convolution():
    image = _texture()
    out, radius = render(image, [Layer(np.ones((96, 96), np.float32), 4.0)])
    assert np.allclose(out, convolve(image, disk_psf(4.0)), atol=1e-4)
    assert np.allclose(radius, 4.0)


def test_sharp_foreground_edge_stays_sharp_over_a_blurred_background():
    image = _texture()
    fg = _half_plane(96, 48)
    out, radius = render(image, [Layer(np.ones((96, 96), np.float32), 10.0), Layer(fg, 0.0)])
    # The in-focus foreground is exact right up to its edge; the background beyond it is blurred.
    assert np.allclose(out[:, :48], image[:, :48], atol=1e-5)
    assert _detail(out[:, 52:]) < 0.5 * _detail(image[:, 52:])
    assert np.all(radius[:, :48] == 0) and np.all(radius[:, 48:] == 10)


def test_blurred_foreground_spills_over_the_sharp_background():
    image = _texture()
    out, _ = render(image, [Layer(np.ones((96, 96), np.float32), 0.0), Layer(_half_plane(96, 48), -10.0)])
    assert np.allclose(out[:, 70:], image[:, 70:], atol=1e-5)  # beyond the foreground's reach: untouched
    assert np.abs(out[:, 50:56] - image[:, 50:56]).mean() > 0.02  # within it: the foreground's blur spills over


def test_background_blur_does_not_take_in_the_foreground_colour():
    image = np.zeros((96, 96, 3), np.float32)
    image[:, :48] = (1.0, 0.0, 0.0)  # a red in-focus object in front
    image[:, 48:] = (0.0, 0.0, 1.0)  # a blue background behind it
    out, _ = render(image, [Layer(np.ones((96, 96), np.float32), 12.0), Layer(_half_plane(96, 48), 0.0)])
    assert out[:, 49:, 0].max() < 0.02 and np.allclose(out[:, 49:, 2], 1.0, atol=0.02)


def test_ramp_radius_map_follows_depth_and_blur_grows_with_it():
    image = _texture(128)
    ramp = np.repeat(np.linspace(0.0, 12.0, 128, dtype=np.float32)[:, None], 128, axis=1)
    out, radius = render(image, [Layer(np.ones((128, 128), np.float32), ramp)])
    assert np.allclose(radius, ramp)
    assert np.allclose(out[:2], image[:2], atol=0.05)
    assert _detail(out[100:]) < 0.5 * _detail(out[20:40])


def test_ladder_spans_the_range_with_finer_steps_near_focus():
    ladder = radius_ladder(-3.0, 19.0)
    assert ladder[0] <= -3.0 and ladder[-1] >= 19.0 and 0.0 in ladder
    steps = np.diff(ladder)
    assert steps.min() == pytest.approx(0.5) and steps.max() > 3


def test_layout_layers_match_the_radius_map():
    obj = SceneObject("box", 0.5, 0.5, 0.3, 0.3, 0.9, 1)
    layout = SceneLayout(0.1, (0.0, 0.0), (obj,), focus=0.9, scale=10.0)
    layers = layout.layers(80, 120)
    assert [np.ndim(layer.radius) for layer in layers] == [0, 0]
    assert layers[0].radius == pytest.approx(8.0) and layers[1].radius == pytest.approx(0.0)
    _, radius = render(_texture(120)[:80], layers)
    inside, outside = layers[1].alpha == 1, layers[1].alpha == 0
    assert inside.sum() > 200 and np.all(radius[inside] < 1e-5) and np.allclose(radius[outside], 8.0)


def test_drawn_layouts_are_deterministic_and_in_range():
    layouts = [SceneLayout.draw(np.random.default_rng(s), max_radius=20.0) for s in range(40)]
    assert layouts[3] == SceneLayout.draw(np.random.default_rng(3), max_radius=20.0)
    assert any(layout.objects for layout in layouts) and any(layout.tilt != (0.0, 0.0) for layout in layouts)
    for layout in layouts:
        radii = np.concatenate([np.ravel(np.abs(layer.radius)) for layer in layout.layers(24, 32)])
        assert radii.max() <= 20.0 + 1e-3


def test_degrade_is_deterministic_and_keeps_in_focus_regions_close():
    photo = np.clip(_texture(96, 4) ** (1 / 2.2), 0, 1)
    a, b = degrade(photo, np.random.default_rng(9)), degrade(photo, np.random.default_rng(9))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.radius, b.radius)
    assert a.image.shape == photo.shape and a.image.dtype == np.float32 and 0 <= a.image.min() <= a.image.max() <= 1
    assert not np.array_equal(a.image, degrade(photo, np.random.default_rng(10)).image)


def test_in_focus_region_of_a_layered_scene_stays_close_before_the_sensor():
    image = _texture(96, 5)
    obj = SceneObject("blob", 0.5, 0.5, 0.35, 0.0, 0.8, 2)
    layers = SceneLayout(0.0, (0.0, 0.0), (obj,), focus=0.8, scale=15.0).layers(96, 96)
    out, radius = render(image, layers, LensProfile.draw(np.random.default_rng(1)))
    core = cv2.erode((layers[1].alpha > 0.99).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert core.sum() > 300 and np.abs(out[core] - image[core]).max() < 1e-4
    assert _detail(out * ~core[..., None]) < _detail(image * ~core[..., None])


def test_clipped_highlights_make_brighter_bokeh_but_stay_white_in_focus():
    image = np.full((64, 64, 3), 0.05, np.float32)
    image[30:34, 30:34] = 1.0  # a saturated highlight
    dim, bright = SceneLayout(0.0, (0.0, 0.0), (), 0.5, 16.0), SceneLayout(0.0, (0.0, 0.0), (), 0.5, 16.0, 6.0)
    blurred = [render(layout.light(image), layout.layers(64, 64))[0] for layout in (dim, bright)]
    assert blurred[1][32, 32].mean() > 3 * blurred[0][32, 32].mean()
    in_focus = SceneLayout(0.0, (0.0, 0.0), (), 0.0, 16.0, 6.0)
    assert np.array_equal(np.clip(render(in_focus.light(image), in_focus.layers(64, 64))[0], 0, 1), image)
