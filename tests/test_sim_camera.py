"""The simulated Camera Module 3: a FrameSource whose frames blur with the thin-lens defocus of its lens position."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurd.capture.camera import FrameSource
from deblurd.capture.sim_camera import SimCamera, SimLens
from deblurd.capture.sources import open_source
from deblurd.config import Config, ConfigError
from deblurd.errors import CameraError
from deblurd.optics.lens_profile import LENS_RANGE, ideal_radius_per_dioptre


def sharpness(frame: np.ndarray) -> float:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


@pytest.fixture
def camera() -> SimCamera:
    cam = SimCamera((320, 240), fps=1000.0, seed=3, still_width=480)
    cam.open()
    yield cam
    cam.close()


def test_thin_lens_figures_of_the_camera_module_3() -> None:
    assert ideal_radius_per_dioptre() == pytest.approx(4.46, abs=0.01)
    assert ideal_radius_per_dioptre(640) == pytest.approx(0.62, abs=0.005)


def test_is_a_frame_source_with_a_focus_motor(camera: SimCamera) -> None:
    assert isinstance(camera, FrameSource)
    assert camera.lens_range() == LENS_RANGE
    assert camera.set_lens_position(40.0) == LENS_RANGE[1]
    assert camera.set_lens_position(2.0) == 2.0
    frame = camera.read(1.0)
    assert frame.pixels.shape == (240, 320, 3) and frame.kind == "continuous"
    assert frame.metadata["lens_position"] == 2.0 and frame.metadata["source"] == "sim-cm3-3"
    still = camera.capture_still()
    assert still.pixels.shape == (270, 480, 3) and still.kind == "still" and still.seq == frame.seq + 1


def test_defocus_blurs_and_focus_is_sharp(camera: SimCamera) -> None:
    focused = camera.autofocus()
    assert focused == camera.subject_dioptres
    sharp = camera.read(1.0).pixels
    camera.set_lens_position(focused + 8)
    far = camera.read(1.0).pixels
    camera.set_lens_position(focused + 2)
    near = camera.read(1.0).pixels
    assert sharpness(sharp) > 1.5 * sharpness(near) > 1.5 * sharpness(far)


def test_frames_differ_only_by_noise_at_one_position(camera: SimCamera) -> None:
    a, b = camera.read(1.0).pixels, camera.read(1.0).pixels
    assert not np.array_equal(a, b), "each frame has its own sensor noise"
    assert np.mean(np.abs(a.astype(int) - b.astype(int))) < 4


def test_autofocus_moves_on_to_the_next_scene(camera: SimCamera) -> None:
    camera.autofocus()
    first = camera.read(1.0)
    camera.autofocus()
    second = camera.read(1.0)
    assert (first.metadata["scene"], second.metadata["scene"]) == (0, 1)
    assert np.mean(np.abs(first.pixels.astype(int) - second.pixels.astype(int))) > 10


def test_the_true_radius_is_the_thin_lens_one_times_the_lens_own_error() -> None:
    cam = SimCamera(seed=11)
    lens = SimLens.draw(11)
    assert lens == cam.lens and lens != SimLens.draw(12), "the lens is seeded"
    assert 0.08 <= abs(lens.radius_scale - 1) <= 0.25, "far enough from ideal for calibration to have work"
    expected = ideal_radius_per_dioptre(640) * lens.radius_scale * 4.0
    assert cam.true_radius(cam.subject_dioptres + 4.0, 640) == pytest.approx(expected)
    assert cam.true_radius(cam.subject_dioptres - 4.0, 640) == pytest.approx(-expected), "in front of focus"
    corner = cam.true_radius(cam.subject_dioptres + 4.0, 640, (1.0, 1.0))
    assert corner == pytest.approx(expected * (1 + lens.field_gain))
    radius = cam.radius_map(48, 64, 4.0)
    assert radius[24, 32] == pytest.approx(expected * 64 / 640, rel=0.01) and radius[0, 0] > radius[24, 32]


def test_layers_put_nearer_objects_in_front(tmp_path: Path) -> None:
    plane = SimCamera(seed=5)
    layers = SimCamera(seed=5, layout="layers")
    for cam in (plane, layers):
        cam.open()
    a, b = plane.render_light(0, 0.5, 480, 640), layers.render_light(0, 0.5, 480, 640)
    difference = np.abs(a - b).max(axis=2)
    assert 0.005 < np.mean(difference > 0.01) < 0.9, "objects nearer than the in-focus plane blur over part of it"


def test_a_scene_folder_and_a_bad_scene(tmp_path: Path) -> None:
    photo = np.zeros((90, 160, 3), np.uint8)
    photo[:, 80:] = 255
    cv2.imwrite(str(tmp_path / "edge.png"), photo)
    cam = SimCamera((160, 90), fps=1000.0, scene=tmp_path)
    cam.open()
    frame = cam.read(1.0).pixels
    assert frame[:, :40].mean() < 60 and frame[:, 120:].mean() > 150
    with pytest.raises(CameraError, match="not a photo or a folder of photos"):
        SimCamera(scene=tmp_path / "missing").open()


def test_config_selects_the_simulated_camera(tmp_path: Path) -> None:
    cfg = Config.model_validate({"camera": {"source": "sim", "width": 160, "height": 120, "sim_seed": 9,
                                            "sim_subject_dioptres": 1.0, "sim_layout": "layers"}})
    source = open_source(cfg.camera)
    try:
        assert isinstance(source, SimCamera) and source.name == "sim-cm3-9" and source.layout == "layers"
        assert source.read(5.0).pixels.shape == (120, 160, 3)
    finally:
        source.close()
    with pytest.raises(Exception, match="sim_layout"):
        Config.model_validate({"camera": {"sim_layout": "sphere"}})
    bad = tmp_path / "bad.toml"
    bad.write_text('[camera]\nsource = "sim"\nsim_still_width = 10\n')
    from deblurd.config import load_config

    with pytest.raises(ConfigError, match="sim_still_width"):
        load_config(bad)
