"""`deblurd calibrate` on pairs the simulated Camera Module 3 collected, and the lens profile it writes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurd.atomic import AtomicWriter
from deblurd.capture.sim_camera import SimCamera
from deblurd.commands import calibrate as cal
from deblurd.commands.collect import CollectPlan, PairCollector
from deblurd.config import Config
from deblurd.errors import ExitCode
from deblurd.optics.lens_profile import (
    PROFILE_NAME,
    SENSOR_WIDTH_PX,
    LensProfileError,
    load_profile,
    profile_path,
    save_profile,
)
from deblurd.output.state_file import write_status

SEED = 4
POSITIONS = [0.0, 2.5, 5.5, 10.5]
"""The subject at 0.5 dioptres: defocus -0.5, 2, 5 and 10 dioptres."""


def deblurd(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deblurd", *argv], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def sim_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimCamera]:
    camera = SimCamera(seed=SEED, still_width=640)
    camera.open()
    out = tmp_path_factory.mktemp("pairs")
    PairCollector(camera, CollectPlan(POSITIONS, 3, "auto", 0.0, 0.0), out, sleep=lambda s: None).run()
    return out, camera


@pytest.fixture(scope="module")
def profile(sim_pairs: tuple[Path, SimCamera]):
    return cal.calibrate(sim_pairs[0])


def test_the_estimated_radius_is_within_10_percent_of_the_true_one(profile, sim_pairs) -> None:
    _, camera = sim_pairs
    for position in POSITIONS:
        for field in ((0.0, 0.0), (2 / 3, 2 / 3)):
            truth = camera.true_radius(position, SENSOR_WIDTH_PX, field)
            estimate = profile.radius_px(position - camera.subject_dioptres, SENSOR_WIDTH_PX, field)
            assert estimate == pytest.approx(truth, rel=0.10), (position, field)
    assert profile.field_gain > 0, "the sim's radius grows towards the corners"
    assert abs(profile.radius_per_dioptre / SENSOR_WIDTH_PX * 640 - 0.62) > 0.03, "not simply the ideal lens"


def test_the_profile_says_how_well_it_fits(profile, sim_pairs) -> None:
    assert profile.lens_id == f"sim-cm3-{SEED}" and profile.source == f"sim-cm3-{SEED}"
    assert 2 * len(POSITIONS) <= len(profile.measurements) <= 3 * len(POSITIONS), "centres with texture"
    assert {m.defocus_dioptres for m in profile.measurements} == {-0.5, 2.0, 5.0, 10.0}
    assert profile.fit.r2 > 0.95 and profile.fit.median_relative_error < 0.1
    assert len(profile.regions) == 9
    report = cal.format_report(profile)
    assert "px/dioptre" in report and "R^2" in report and report.count("\n") == len(profile.measurements) + 2


def test_the_profile_round_trips_and_predicts_the_blur_at_a_lens_position(profile, tmp_path: Path) -> None:
    path = tmp_path / PROFILE_NAME
    save_profile(path, profile)
    loaded = load_profile(path)
    assert loaded == profile
    k640 = profile.radius_per_dioptre * 640 / SENSOR_WIDTH_PX
    assert loaded.expected_radius(3.0, 0.0, 640) == pytest.approx(3 * k640)
    assert loaded.expected_radius(3.0, 3.0, 640) == 0.0
    assert loaded.psf_lens(1280).soften == pytest.approx(2 * profile.soften_px)


def test_a_bad_profile_is_named_with_its_fix(tmp_path: Path) -> None:
    with pytest.raises(LensProfileError, match="run `deblurd calibrate --pairs DIR`"):
        load_profile(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"format": "deblurd-lens-profile/9"}')
    with pytest.raises(LensProfileError, match="bad.json is unreadable or not deblurd-lens-profile/1"):
        load_profile(tmp_path / "bad.json")
    assert profile_path(tmp_path / "out" / "status.json") == tmp_path / "out" / PROFILE_NAME
    assert profile_path(tmp_path / "status.json", tmp_path / "x.json") == tmp_path / "x.json"


def test_cli_writes_the_profile_beside_the_state_file_and_status_and_doctor_show_it(
        sim_pairs, profile, tmp_path: Path) -> None:
    config = tmp_path / "deblurd.toml"
    config.write_text(f'[output]\ndir = "{tmp_path / "out"}"\n[camera]\nsource = "sim"\n')
    done = deblurd("calibrate", "--config", str(config), "--pairs", str(sim_pairs[0]), "--lens-id", "My Lens")
    assert done.returncode == 0, done.stderr
    written = load_profile(tmp_path / "out" / PROFILE_NAME)
    assert written.lens_id == "my-lens" and written.radius_per_dioptre == pytest.approx(profile.radius_per_dioptre)
    assert "lens profile written to" in done.stdout and "R^2" in done.stdout
    state = {"state": "running", "updated": time.time(), "pid": 1, "lens_position": 2.0, "source": "sim-cm3-4"}
    write_status(Config.model_validate({"output": {"dir": str(tmp_path / "out")}}).state_file, state, AtomicWriter())
    status = deblurd("status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    expected = written.expected_radius(2.0, 0.0, 640)
    assert "lens my-lens" in status.stdout and f"radius {expected:.2f} px at 640 px" in status.stdout
    doctor = deblurd("doctor", "--config", str(config))
    assert "lens my-lens" in doctor.stdout and "simulated Camera Module 3" in doctor.stdout
    (tmp_path / "out" / PROFILE_NAME).write_text("{")
    doctor = deblurd("doctor", "--config", str(config))
    assert doctor.returncode == 1 and "deblurd calibrate --pairs DIR rewrites it" in doctor.stdout


def test_bad_pairs_get_one_line_errors(sim_pairs, tmp_path: Path) -> None:
    done = deblurd("calibrate", "--pairs", str(tmp_path / "nothing"), "--out", str(tmp_path / "p.json"))
    assert done.returncode == ExitCode.NOINPUT and "written by `deblurd collect`" in done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "p.json").exists()
    broken = tmp_path / "broken"
    manifest = json.loads((sim_pairs[0] / "manifest.json").read_text())
    for scene in manifest["scenes"]:
        for f in scene["files"]:
            (broken / f["file"]).parent.mkdir(parents=True, exist_ok=True)
            (broken / f["file"]).write_bytes(b"not an image")
    (broken / "manifest.json").write_text(json.dumps(manifest))
    done = deblurd("calibrate", "--pairs", str(broken), "--out", str(tmp_path / "p.json"))
    assert done.returncode == ExitCode.DATAERR and "reference.png: the file is missing or corrupt" in done.stderr
    for scene in manifest["scenes"]:
        scene["moved"] = True
    (broken / "manifest.json").write_text(json.dumps(manifest))
    done = deblurd("calibrate", "--pairs", str(broken), "--out", str(tmp_path / "p.json"))
    assert done.returncode == ExitCode.DATAERR and "every scene moved" in done.stderr


def test_a_region_without_texture_is_not_measured() -> None:
    flat = np.full((90, 120), 0.4, np.float32)
    textured = cv2.resize(np.random.default_rng(0).random((12, 16)).astype(np.float32), (120, 90))
    assert cal.regions(flat, flat, 4) == []
    assert len(cal.regions(textured, textured, 4)) == 9


def test_the_radius_search_finds_a_known_disk() -> None:
    from deblurd.optics.lens_psf import LensProfile, lens_psf

    rng = np.random.default_rng(1)
    sharp = cv2.resize(rng.random((40, 40)).astype(np.float32), (160, 160), interpolation=cv2.INTER_LINEAR)
    lens = LensProfile(rim=0.3)
    blurred = cv2.filter2D(sharp, -1, np.ascontiguousarray(lens_psf(3.2, lens)[::-1, ::-1]),
                           borderType=cv2.BORDER_REFLECT101)
    region = cal.regions(sharp, blurred, 12, grid=1)[0]
    radius, _ = cal.fit_radius(region, 1.0, lens, 8.0)
    assert radius == pytest.approx(3.2, abs=0.05)
