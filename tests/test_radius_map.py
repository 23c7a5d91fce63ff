"""Know the blur, then invert it: a radius pack's map, routes, prior, generators' radius channel, stills, sidecar and
picture, through real TFLite models whose outputs say what they saw (conftest.write_probe_pack); and the shipped
class pack, which declares none of it, loads with the old meaning."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, make_result, two_halves, write_probe_pack

from deblurd.commands.deblur import RECORD_NAME
from deblurd.config import OutputConfig
from deblurd.errors import PackError
from deblurd.optics.blur import BlurDefinition
from deblurd.optics.wiener import wiener_disk
from deblurd.output.layout import read_sidecar
from deblurd.output.map_overlay import render
from deblurd.output.store import ResultStore
from deblurd.restore import radius_map
from deblurd.restore.inference import ModelPack, split_luma
from deblurd.restore.manifest import load_manifest
from deblurd.restore.router import Router

GAIN = 0.25


@pytest.fixture(scope="module")
def probe(probe_pack_dir: Path) -> ModelPack:
    return ModelPack.load(probe_pack_dir, "int8", "auto", threads=1)


def expected_radius(rgb: np.ndarray) -> np.ndarray:
    """The probe mapper's radius per 8 px cell of a 640 px wide frame."""
    luma, _ = split_luma(rgb)
    h, w = luma.shape
    cells = cv2.resize(luma, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    return 8.0 * np.maximum(1.0 - 2.0 * cells, 0.0)


def test_the_route_tells_the_generator_the_radius_and_leaves_sharp_cells_exact(probe):
    rgb = two_halves()
    router = Router(probe)
    luma, _ = split_luma(rgb)
    severity, weights, radius = router.plan(luma)
    assert severity.label == "heavy" and set(weights) == {"heavy"} and radius is not None
    half = rgb.shape[1] // 2
    cells = router.mapper.map(luma).radius
    assert cells is not None and np.abs(cells - expected_radius(rgb))[:, 40:].max() < 0.05
    _, out = router.route(rgb)
    assert np.array_equal(out[:, : half - 64], rgb[:, : half - 64]), "cells the map calls sharp come back exactly"
    restored = router.route_luma(luma)[1]
    told = weights["heavy"] * GAIN * radius / probe.restorers["heavy"].radius_scale
    assert np.abs((restored - luma) - told).max() < 0.02, "the generator's output is its radius channel"
    assert (restored - luma)[:, half + 40:].mean() > 0.1


def test_the_sidecar_records_the_radius_grid(probe, tmp_path):
    rgb = two_halves()
    severity, out = Router(probe).route(rgb)
    record = severity.map
    grid = np.array(record["radius_px"])
    assert grid.shape == (len(record["rows"]), len(record["rows"][0])) == (15, 20)
    assert np.all(grid == np.round(grid, 1)) and record["bands"]["semi_max"] == 3.0
    assert grid[:, :9].max() <= 1.0 and grid[:, 11:].min() > 3.0
    confidence = np.array(record["confidence"])
    assert confidence.min() >= 0.0 and (confidence == 1.0).mean() > 0.8, "passed-through cells lose confidence"
    assert set("".join(r[:9] for r in record["rows"])) == {"s"}
    assert set("".join(r[11:] for r in record["rows"])) == {"h"}
    result = make_result(1, "heavy", size=rgb.shape[:2])
    store = ResultStore(OutputConfig(dir=tmp_path / "out", min_free_mb=10))
    store.open()
    entry = store.save(replace(result, frame=replace(result.frame, pixels=rgb), severity=severity, restored=out))
    sidecar = read_sidecar(tmp_path / "out", entry)
    assert sidecar.blur_map is not None and sidecar.blur_map["radius_px"] == grid.tolist()


def test_the_manifest_bands_alone_turn_radius_into_routes(tmp_path):
    rgb = two_halves()
    wide_semi = ModelPack.load(write_probe_pack(tmp_path / "photo", semi_max=9.0), "int8", "auto", threads=1)
    severity, _ = Router(wide_semi).route(rgb)
    assert severity.label == "semi" and set("".join(r[11:] for r in severity.map["rows"])) == {"m"}
    bands = BlurDefinition(psf="defocus", unit="px", sharp_max=1.0, semi_max=3.0, heavy_max=16.0,
                           train_semi=(0.8, 3.4), train_heavy=(2.6, 16.0))
    radii = np.array([0.0, 1.0, 1.01, 3.0, 3.01, 40.0])
    assert bands.class_index(radii).tolist() == [0, 0, 1, 1, 2, 2]
    assert [bands.label(r) for r in radii] == ["sharp", "sharp", "semi", "semi", "heavy", "heavy"]


def test_the_lens_prior_is_blended_by_confidence(tmp_path, probe):
    raw = np.array([[[0.0, 0.25], [0.5, 1.0]]], np.float32)
    radius, confidence = radius_map.measured(raw, 8.0, expected=6.0)
    assert radius.tolist() == [[4.5, 4.0]] and confidence.tolist() == [[0.25, 1.0]]
    unsure = ModelPack.load(write_probe_pack(tmp_path / "photo", confidence=0.5), "int8", "auto", threads=1)
    router = Router(unsure)
    router.expect(8.0)
    severity, _ = router.route(two_halves())
    left = np.array(severity.map["radius_px"])[:, :9]
    assert np.abs(left - 4.0).max() <= 0.2 and severity.map["lens_prior"] == "heavy"
    sure = Router(probe)
    sure.expect(8.0)
    assert np.array(sure.route(two_halves())[0].map["radius_px"])[:, :9].max() <= 1.0, "a sure map keeps its radius"


def test_a_still_goes_up_the_cascade_with_the_radius_measured_at_each_scale(probe):
    rgb = cv2.resize(two_halves(), (1920, 1440), interpolation=cv2.INTER_CUBIC)
    router = Router(probe)
    assert router.stills.finest == "map"
    severity, out = router.route_still(rgb)
    assert severity.label == "heavy" and "radius_px" in severity.map
    assert [s["width"] for s in severity.map["scales"]] == [640, 1280, 1920]
    assert np.array_equal(out[:, :800], rgb[:, :800]) and not np.array_equal(out[:, 1100:], rgb[:, 1100:])


def test_the_picture_shows_radius_on_a_ramp_with_the_bands(probe, tmp_path):
    rgb = two_halves()
    severity, _ = Router(probe).route(rgb)
    picture = render(rgb, severity.map)
    classes = render(rgb, {k: v for k, v in severity.map.items() if k not in ("radius_px", "confidence", "bands")})
    assert picture.shape == rgb.shape and not np.array_equal(picture, classes)
    ramp = picture[10:20, 8:208].astype(int)
    assert (ramp[:, 0, 2] > ramp[:, 0, 0]).all(), "blue at 0 px"
    assert (ramp[:, -1, 0] > ramp[:, -1, 2]).all(), "red at heavy_max"
    config = tmp_path / "deblurd.toml"
    config.write_text(f'[models]\ndir = "{probe.pack_dir.parent}"\npack = "photo"\n')
    cv2.imwrite(str(tmp_path / "halves.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    done = subprocess.run([sys.executable, "-m", "deblurd", "deblur", str(tmp_path / "halves.png"), "--save-map",
                           "--config", str(config), "-o", str(tmp_path / "out")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    saved = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "halves-map.png")), cv2.COLOR_BGR2RGB)
    assert np.abs(saved.astype(int) - picture).max() <= 1
    line = json.loads((tmp_path / "out" / RECORD_NAME).read_text().splitlines()[-1])
    assert line["blur_map"]["radius_px"] == severity.map["radius_px"]


def test_the_wiener_channel_is_the_tile_deconvolved_with_its_radius():
    rng = np.random.default_rng(0)
    luma = rng.random((64, 64)).astype(np.float32)
    radius = np.full((64, 64), 3.0, np.float32)
    x = radius_map.generator_input(luma, radius, ["luma", "radius", "wiener"], 8.0, 2 / 255)
    assert x.shape == (64, 64, 3) and np.array_equal(x[..., 0], luma) and np.allclose(x[..., 1], 3.0 / 8.0)
    assert np.array_equal(x[..., 2], wiener_disk(luma, 3.0, 2 / 255))
    with pytest.raises(ValueError, match="needs the radius map"):
        radius_map.generator_input(luma, None, ["luma", "radius"], 8.0, 2 / 255)


def test_the_shipped_class_pack_loads_with_the_old_meaning(photo_pack):
    manifest = load_manifest(photo_pack.pack_dir)
    assert manifest.models["classifier"].output == "classes"
    assert all(manifest.models[r].inputs == ["luma"] for r in ("semi", "heavy"))
    assert not any(r.needs_radius for r in photo_pack.restorers.values())
    blur_map = Router(photo_pack).mapper.map(split_luma(two_halves())[0])
    assert blur_map.radius is None and "radius_px" not in blur_map.record()


def test_a_generator_told_the_radius_needs_a_radius_mapper(probe_pack_dir, tmp_path):
    manifest = json.loads((probe_pack_dir / "manifest.json").read_text())
    manifest["models"]["classifier"]["output"] = "classes"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="take the radius map but the classifier's output is 'classes'"):
        load_manifest(tmp_path)
    manifest["models"]["classifier"]["output"] = "radius"
    manifest["models"]["semi"]["inputs"] = ["luma"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="has 2 channel"):
        load_manifest(tmp_path)
