"""tools/eval/sharp.py: the false-positive and miss-rate figures of issue 18 come from the real route of a real
pack; forced routes pin what each figure must read."""

from __future__ import annotations

import math

import numpy as np
from test_still import sharp_still

from deblurd.restore.router import Router
from tools.eval import sharp

FRAME = (320, 240)


def test_a_digital_zoom_magnifies_the_centre_of_the_frame():
    rgb = sharp_still((1280, 960), seed=4)
    assert np.array_equal(sharp.zoomed(rgb, FRAME, zoom=1.0), sharp.fit(rgb, FRAME))
    band = np.zeros((960, 1280, 3), np.uint8)
    band[:, 480:800] = 255  # the middle quarter of the width
    zoom = sharp.zoomed(band, FRAME, zoom=2.0)
    white = np.flatnonzero(zoom[FRAME[1] // 2, :, 0] > 127)
    assert zoom.shape == (FRAME[1], FRAME[0], 3) and abs(len(white) - FRAME[0] / 2) <= 2, "twice as wide"
    assert abs(white.mean() - FRAME[0] / 2) <= 1, "about the centre"


def test_altered_share_and_psnr_read_what_changed():
    image = sharp_still((64, 48), seed=1)
    changed = image.copy()
    changed[:12, :, 0] ^= 1  # a quarter of the rows, one channel, one level
    assert sharp.altered_share(image, image) == 0 and sharp.psnr(image, image) == math.inf
    assert sharp.altered_share(image, changed) == 0.25 and math.isfinite(sharp.psnr(image, changed))


def test_a_flat_frame_has_no_textured_area_to_miss(photo_pack):
    flat = np.full((FRAME[1], FRAME[0], 3), 90, np.uint8)
    textured = sharp.textured_cells(flat[..., 0].astype(np.float32) / 255)
    assert not textured.any() and sharp.missed_share(Router(photo_pack), flat, textured) == 0.0


def test_the_rows_read_pass_through_as_untouched_and_missed_and_a_forced_route_as_altered_and_found(photo_pack):
    photos = [("still", sharp_still((960, 720), seed=2))]
    untouched = list(sharp.clean_rows(Router(photo_pack, forced="sharp"), photos, FRAME))
    assert [(r.variant, r.altered_share, r.psnr) for r in untouched] == [("as is", 0.0, math.inf),
                                                                       ("x1.28 zoom", 0.0, math.inf)]
    restored = list(sharp.clean_rows(Router(photo_pack, forced="heavy"), photos, FRAME))
    assert all(r.altered_share > 0.5 and math.isfinite(r.psnr) for r in restored)
    missed = list(sharp.uniform_rows(Router(photo_pack, forced="sharp"), photos, FRAME, seed=0))
    found = list(sharp.uniform_rows(Router(photo_pack, forced="heavy"), photos, FRAME, seed=0))
    assert [r.radius for r in missed] == list(sharp.UNIFORM_RADII) and all(r.textured_share > 0.5 for r in missed)
    assert [r.missed for r in missed] == [1.0, 1.0] and [r.missed for r in found] == [0.0, 0.0]
    assert "0 of 2 frames wholly routed" not in sharp.uniform_table(found)
    assert "x1.28 zoom: 1 of 1 altered" in sharp.clean_table(restored)
