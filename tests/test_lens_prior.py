"""The lens profile steers the blur map: at the LensPosition the camera reports, the blur expected on the
configured scene plane becomes a prior on the map (continuous frames and a still's first scale)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_config

from deblurd.capture.sim_camera import SimCamera
from deblurd.daemon.pipeline import Pipeline
from deblurd.optics.lens_profile import PROFILE_NAME, FitQuality, LensCalibration, save_profile
from deblurd.output.store import ResultStore
from deblurd.restore.blur_map import PRIOR_FLOOR, BlurMap

K640 = 0.6
"""Blur radius per dioptre at 640 px of the test profile: 8 dioptres of defocus are 4.8 px (heavy)."""


def lens(k640: float = K640) -> LensCalibration:
    return LensCalibration(lens_id="test", created="2026-01-01", source="sim", pairs="x",
                           radius_per_dioptre=k640 * 4608 / 640, field_gain=0.0, rim=0.0, soften_px=0.0,
                           chroma=(0.0, 0.0, 0.0), regions=[], measurements=[],
                           fit=FitQuality(points=1, rms_relative_error=0, median_relative_error=0,
                                          max_relative_error=0, r2=1))


def test_a_prior_favours_the_expected_class_and_keeps_each_cell_a_distribution():
    cells = np.array([[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]], np.float32)
    steered = BlurMap(cells, 8, (8, 16), "m").with_prior("semi")
    np.testing.assert_allclose(steered.cells.sum(axis=-1), 1.0, rtol=1e-6)
    first = np.array([0.5 * PRIOR_FLOOR, 0.3, 0.2 * PRIOR_FLOOR])
    np.testing.assert_allclose(steered.cells[0, 0], first / first.sum(), rtol=1e-6)
    assert steered.cells[0, 1].argmax() == 2, "strong evidence for another class still wins"
    assert steered.record()["lens_prior"] == "semi" and "lens_prior" not in BlurMap(cells, 8, (8, 16), "m").record()


def _run(tmp_path: Path, pack, profile, **lens_cfg):
    cfg = make_config(tmp_path, camera={"source": "sim", "width": 320, "height": 240, "fps": 30, "sim_seed": 2},
                      lens={"mode": "manual", **lens_cfg}, output={"max_per_minute": 0},
                      pipeline={"max_frames": 2})
    store = ResultStore(cfg.output)
    store.open()
    source = SimCamera((320, 240), 30, seed=2, still_width=640)
    source.open()
    pipe = Pipeline(source, pack, store, cfg, lens_profile=profile)
    pipe.run()
    source.close()
    sidecars = sorted((tmp_path / "out").rglob("*.json"))
    return pipe, [json.loads(p.read_text()) for p in sidecars if "blur_map" in p.read_text()]


def test_the_daemon_steers_the_map_by_the_blur_expected_on_the_scene_plane(tmp_path, photo_pack):
    pipe, sidecars = _run(tmp_path, photo_pack, lens(), position_dioptres=8.5, subject_dioptres=0.5)
    assert pipe.lens.expected_radius == pytest.approx(K640 * 8.0) and pipe.router.expected == "heavy"
    assert pipe.state()["expected_blur_px"] == pytest.approx(4.8)
    assert len(sidecars) == 2 and all(s["blur_map"]["lens_prior"] == "heavy" for s in sidecars)


def test_without_a_scene_plane_or_with_autofocus_the_map_alone_decides(tmp_path, photo_pack):
    pipe, sidecars = _run(tmp_path / "a", photo_pack, lens(), position_dioptres=8.5)
    assert pipe.lens.expected_radius is None and pipe.router.expected is None
    assert sidecars and all("lens_prior" not in s["blur_map"] for s in sidecars)
    pipe, _ = _run(tmp_path / "b", photo_pack, None, position_dioptres=8.5, subject_dioptres=0.5)
    assert pipe.router.expected is None, "no profile, no prior"


def test_a_configured_profile_that_cannot_be_read_stops_the_daemon_with_its_fix(tmp_path, samples_dir):
    missing = tmp_path / "nope.json"
    config = tmp_path / "deblurd.toml"
    config.write_text(f'[lens]\nprofile = "{missing}"\n[output]\ndir = "{tmp_path / "out"}"\n'
                      f'[thermal]\nenabled = false\n')
    done = subprocess.run([sys.executable, "-m", "deblurd", "run", "--config", str(config), "--frames", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 78 and "lens.profile" in done.stderr and "deblurd calibrate" in done.stderr


def test_a_damaged_default_profile_is_skipped_with_a_warning(tmp_path, caplog):
    from deblurd.optics.lens_profile import daemon_profile

    state = tmp_path / "status.json"
    assert daemon_profile(state, None) is None
    (tmp_path / PROFILE_NAME).write_text("{ not json")
    assert daemon_profile(state, None) is None and "running without it" in caplog.text
    save_profile(tmp_path / PROFILE_NAME, lens())
    assert daemon_profile(state, None).lens_id == "test"
