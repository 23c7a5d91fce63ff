"""The Router on the shipped photo pack: the classifier's verdict picks the route, a forced route overrides it
(what benchmarks use instead of patching the classifier), sharp frames come back untouched, chroma is kept."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import read_sample
from deblurd.inference import split_luma
from deblurd.router import Router


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


def test_forced_route_keeps_the_classifiers_scores(photo_pack):
    luma, _ = split_luma(read_sample("01-sharp.jpg"))
    verdict = Router(photo_pack).decide(luma)
    forced = Router(photo_pack, forced="heavy").decide(luma)
    assert forced.label == "heavy" and forced.scores == verdict.scores and forced.model == verdict.model


def test_unforced_route_follows_the_classifier(photo_pack):
    router = Router(photo_pack)
    for name in ("01-sharp.jpg", "02-semi.jpg", "03-heavy.jpg"):
        luma, _ = split_luma(read_sample(name))
        severity, restored = router.route_luma(luma)
        assert severity == photo_pack.classifier.classify(luma)
        expected = luma if severity.label == "sharp" else photo_pack.restorers[severity.label].restore(luma)
        assert np.array_equal(restored, expected)


def test_an_unknown_forced_route_is_refused(photo_pack):
    with pytest.raises(ValueError, match="forced route must be one of sharp, semi, heavy"):
        Router(photo_pack, forced="medium")  # type: ignore[arg-type]
