"""Tile layout and blending, with functions whose untiled result is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deblurd.restore.tiling import blend_window, reflect_pad, run_tiled, tile_starts


@pytest.mark.parametrize("length,tile,overlap", [(10, 16, 4), (16, 16, 4), (100, 32, 8), (97, 32, 0), (33, 32, 16)])
def test_tiles_cover_with_at_least_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile >= length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_window_is_positive_and_symmetric():
    w = blend_window(32, 8)
    assert (w > 0).all() and np.allclose(w, w[::-1]) and w[16] == 1


def test_identity_is_exact():
    image = np.random.default_rng(0).random((75, 130), np.float32)
    np.testing.assert_allclose(run_tiled(image, lambda t: t, (32, 32), 8), image, atol=1e-6)


def test_small_image_is_reflect_padded_and_cropped_back():
    image = np.random.default_rng(1).random((10, 20), np.float32)
    padded, offset = reflect_pad(image, 32, 32)
    assert padded.shape == (32, 32) and offset == (11, 6)
    np.testing.assert_allclose(run_tiled(image, lambda t: t * 2, (32, 32), 8), image * 2, atol=1e-6)


def test_local_filter_matches_untiled_within_tolerance():
    image = np.random.default_rng(2).random((120, 150), np.float32)
    blur = lambda x: cv2.GaussianBlur(x, (5, 5), 1.0, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    tiled = run_tiled(image, blur, (48, 48), 16)
    assert np.abs(tiled - blur(image)).mean() < 0.005
