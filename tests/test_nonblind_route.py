"""The radius path made by the real tools: a radius mapper and non-blind semi / heavy generators trained a few steps
(tools.train) and exported (tools.train.export) load as a pack whose manifest says so, and the daemon's route feeds
the generators the radius map they were trained to take."""

from __future__ import annotations

import numpy as np
from conftest import two_halves

from deblurd.restore.inference import ModelPack, split_luma
from deblurd.restore.manifest import load_manifest
from deblurd.restore.router import Router
from tools.data.realistic import RealisticSource
from tools.data.synth import told_radius


def test_export_writes_the_radius_fields_and_the_route_cost_with_the_map(radius_pack_dir):
    manifest = load_manifest(radius_pack_dir)
    mapper = manifest.models["classifier"]
    assert mapper.output == "radius" and mapper.architecture == "mapper-radius"
    assert "float_radius_mae_px" in mapper.evaluation["export_check"]
    for role in ("semi", "heavy"):
        entry = manifest.models[role]
        assert entry.inputs == ["luma", "radius"] and entry.input_shape == [1, 256, 256, 2]
        assert entry.macs_per_pixel_with_map == round(entry.macs_per_pixel + mapper.macs_per_pixel, 1)
        assert entry.macs_per_pixel_with_map <= (20_000 if role == "semi" else 30_000)
        assert any("--arch nonblind" in c for c in entry.training["commands"])
        check = entry.evaluation["export_check"]
        assert 15 < check["input_psnr"] < 45, "the input's PSNR is its luminance's, not the radius channel's"


def test_the_trained_generators_output_depends_on_the_radius_they_are_told(radius_pack_dir):
    pack = ModelPack.load(radius_pack_dir, "int8", "auto", threads=1)
    luma, _ = split_luma(two_halves())
    for restorer in pack.restorers.values():
        assert restorer.needs_radius
        near = restorer.restore_working(luma, np.zeros_like(luma))
        far = restorer.restore_working(luma, np.full_like(luma, 12.0))
        assert np.abs(near - far).mean() > 1e-4


def test_the_daemon_route_runs_the_trained_radius_pack(radius_pack_dir):
    pack = ModelPack.load(radius_pack_dir, "int8", "auto", threads=1)
    rgb = two_halves()
    severity, out = Router(pack, forced="heavy").route(rgb)
    assert severity.label == "heavy" and out.shape == rgb.shape and not np.array_equal(out, rgb)
    assert "radius_px" in severity.map and len(severity.map["radius_px"]) == 15
    severity, out = Router(pack).route(rgb)
    if not severity.restored:
        assert out is rgb


def test_training_labels_are_cell_mean_radii_and_the_told_radius_is_a_mappers():
    source = RealisticSource("photo", "validation", 3)
    crops, targets = source.radius_cells(2, 64)
    assert crops.shape == (2, 64, 64, 1) and targets.shape == (2, 8, 8, 2) and targets[..., 0].min() >= 0
    _, classes = RealisticSource("photo", "validation", 3).cells(2, 64)
    assert np.array_equal(classes[..., 0], source.spec.blur.class_index(targets[..., 0]))
    radius = np.zeros((64, 64), np.float32)
    radius[:, 32:] = 6.0
    told = told_radius(radius, np.random.default_rng(0))
    assert told.min() >= 0 and abs(told[:, 48:].mean() - 6.0) < 1.5 and told[:, :16].max() < 1.5
    assert len(np.unique(np.round(told[0, 28:36], 3))) > 2, "cell means interpolated, as the daemon does"


def test_the_photo_evaluation_scores_a_non_blind_generator_told_the_map_and_told_the_truth(radius_pack_dir):
    from tools.eval.photo import photo_rows

    router = Router(ModelPack.load(radius_pack_dir, "int8", "auto", threads=1))
    tuned = {role: {"wiener_sigma": 2 / 255, "rl_iterations": 5} for role in ("semi", "heavy")}
    blurred = RealisticSource("photo", "validation", 3).sample(96, 3.0)[0]
    rows = photo_rows({"int8": router}, tuned, {"semi": {}, "heavy": {}})(2.0, blurred, np.ones((1, 1)))
    told = rows["ours int8, semi generator told the true radius"]
    assert told.shape == blurred.shape and "ours int8, semi generator" in rows
    expected = router.restore(blurred, "semi", np.full(blurred.shape, 2.0, np.float32))
    assert np.array_equal(told, expected)
