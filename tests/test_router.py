"""The blur map and the Router on the shipped photo pack: each region takes its own route, in-focus regions and
sharp frames come back exactly as they went in, a forced route overrides the map (what benchmarks use instead of
patching the classifier), chroma is kept."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_sample

from deblurd.optics import blur
from deblurd.restore.blur_map import MAP_LETTERS, RECORD_CELL, BlurMapper
from deblurd.restore.inference import split_luma
from deblurd.restore.router import Router


def half_defocused(radius: float = 5.0) -> np.ndarray:
    """A sharp sample whose right half is defocused by a disk of `radius` px (an in-focus subject, a blurred
    background)."""
    sharp = read_sample("06-sharp.jpg").astype(np.float32) / 255.0
    blurred = blur.BlurSpec("defocus", radius).apply(sharp, np.random.default_rng(0))
    out = sharp.copy()
    out[:, sharp.shape[1] // 2:] = blurred[:, sharp.shape[1] // 2:]
    return np.round(out * 255).astype(np.uint8)


@pytest.mark.parametrize("label", ["sharp", "semi", "heavy"])
def test_forced_route_passes_sharp_through_and_restores_luminance_only(photo_pack, label):
    rgb = read_sample("03-heavy.jpg")
    timings: dict = {}
    severity, out = Router(photo_pack, forced=label).route(rgb, timings)
    assert severity.label == label and set(timings) == {"classify_s", "restore_s"}
    if label == "sharp":
        assert out is rgb
        return
    assert out.shape == rgb.shape and out.dtype == np.uint8 and not np.array_equal(out, rgb)
    (_, before), (_, after) = split_luma(rgb), split_luma(out)
    assert np.abs(before[..., 1:].astype(int) - after[..., 1:]).mean() < 1.5


def test_forced_route_keeps_the_maps_shares(photo_pack):
    luma, _ = split_luma(read_sample("01-sharp.jpg"))
    verdict, _ = Router(photo_pack).decide(luma)
    forced, weights = Router(photo_pack, forced="heavy").decide(luma)
    assert forced.label == "heavy" and forced.scores == verdict.scores and forced.map == verdict.map
    assert set(weights) == {"heavy"} and np.all(weights["heavy"] == 1)


def test_in_focus_half_is_untouched_and_defocused_half_is_restored(photo_pack):
    rgb = half_defocused()
    severity, out = Router(photo_pack).route(rgb)
    rows = severity.map["rows"]
    left = "".join(r[: len(r) // 2] for r in rows)
    right = "".join(r[-(len(r) // 2):] for r in rows)
    assert left.count("s") >= 0.8 * len(left), rows
    assert right.count("s") <= 0.2 * len(right) and right.count("h") >= 0.6 * len(right), rows  # radius 5 is near
    # the semi/heavy edge (3 px): some of it is called semi, and semi restores it too
    restored = severity.scores["semi"] + severity.scores["heavy"]
    assert severity.label == "heavy" and 0.35 < restored < 0.7 and severity.scores["heavy"] > severity.scores["semi"]
    changed = np.abs(out.astype(int) - rgb).max(axis=2) > 0
    w = rgb.shape[1]
    assert not changed[:, : w // 3].any(), "the in-focus subject must come back exactly"
    assert changed[:, 2 * w // 3:].mean() > 0.5


def test_the_restored_half_is_sharper_not_only_different(photo_pack):
    rgb = half_defocused()
    _, out = Router(photo_pack).route(rgb)
    truth = read_sample("06-sharp.jpg")
    right = (slice(None), slice(3 * rgb.shape[1] // 4, None))
    error = lambda x: np.abs(x[right].astype(float) - truth[right]).mean()  # noqa: E731
    assert error(out) < 0.9 * error(rgb)


@pytest.mark.parametrize("size", [(479, 637), (250, 333), (100, 90)])
def test_any_frame_size_gets_finite_weights_and_a_valid_result(photo_pack, size):
    rgb = np.ascontiguousarray(read_sample("03-heavy.jpg")[: size[0], : size[1]])
    luma, _ = split_luma(rgb)
    router = Router(photo_pack)
    severity, weights = router.decide(luma)
    assert all(w.shape == luma.shape and np.isfinite(w).all() for w in weights.values())
    assert np.isfinite(list(severity.scores.values())).all()
    _, restored = router.route_luma(luma)
    assert restored.shape == luma.shape and np.isfinite(restored).all()


def test_a_flat_frame_is_passed_through_as_the_same_array(photo_pack):
    flat = np.full((480, 640, 3), 120, np.uint8)
    severity, out = Router(photo_pack).route(flat)
    assert severity.label == "sharp" and out is flat


def test_map_record_describes_the_grid(photo_pack):
    luma, _ = split_luma(read_sample("03-heavy.jpg"))
    record = BlurMapper(photo_pack.classifier).map(luma).record()
    assert len(record["rows"]) == len(record["starts"]["y"]) and all(
        len(r) == len(record["starts"]["x"]) and set(r) <= set(MAP_LETTERS) for r in record["rows"])
    assert record["working_size"] == [640, 480] and record["tile_px"] == RECORD_CELL
    assert (len(record["rows"]), len(record["rows"][0])) == (480 // RECORD_CELL, 640 // RECORD_CELL)


def test_an_unknown_forced_route_is_refused(photo_pack):
    with pytest.raises(ValueError, match="forced route must be one of sharp, semi, heavy"):
        Router(photo_pack, forced="medium")  # type: ignore[arg-type]
