"""Pack facts have one source: the registry builds a pack, export writes its facts into the manifest, and every
shipped manifest still agrees with the registry (so a change to either is caught here)."""

from __future__ import annotations

import pytest

from deblurd.config import ModelsConfig
from deblurd.restore.manifest import RESTORER_ROLES, load_manifest
from deblurd.restore.packs import PACKS, pack_spec


@pytest.mark.parametrize("name", sorted(PACKS))
def test_shipped_manifest_agrees_with_the_registry(name):
    spec, manifest = pack_spec(name), load_manifest(ModelsConfig().dir / name)
    assert manifest.name == spec.name
    assert manifest.blur == spec.blur
    assert manifest.working_width == spec.working_width
    classifier = manifest.models["classifier"]
    dense = (classifier.input_shape, classifier.overlap) == ([1, spec.tile, spec.tile, 1], spec.map_overlap)
    crop = (classifier.input_shape, classifier.overlap) == ([1, spec.classifier_crop, spec.classifier_crop, 1], 0)
    assert dense or crop, "a dense blur mapper on generator tiles, or a crop classifier"
    for role in RESTORER_ROLES:
        assert manifest.models[role].input_shape == [1, spec.tile, spec.tile, 1]
        assert manifest.models[role].overlap == spec.overlap


def test_blur_classes_cover_the_training_ranges():
    for spec in PACKS.values():
        b = spec.blur
        assert 0 <= b.sharp_max < b.semi_max < b.heavy_max
        assert b.train_semi[0] <= b.sharp_max and b.train_semi[1] >= b.semi_max
        assert b.train_heavy[0] <= b.semi_max and b.train_heavy[1] >= b.heavy_max


def test_unknown_pack_names_the_known_ones():
    with pytest.raises(KeyError, match="known packs are photo, mnist, fashion-mnist"):
        pack_spec("nope")
