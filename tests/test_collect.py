"""`deblurd collect` against a fake camera whose frames blur with the distance between lens and subject."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurd.commands import collect
from deblurd.commands.collect import CollectPlan, PairCollector
from deblurd.errors import CameraError, NoFocusMotor
from deblurd.frames import Frame
from deblurd.optics.blur import convolve, disk_psf

RANGE = (0.0, 15.0, 1.0)


class FakeLensCamera:
    """A FrameSource whose subject sits at `focus` dioptres; a frame is blurred by a defocus disk whose
    radius grows with |lens - focus|, as a real lens would blur it."""

    name = "fake-lens"

    def __init__(self, focus: float = 3.0, size: tuple[int, int] = (96, 72)) -> None:
        self.focus = focus
        self.size = size
        self.scene = 0
        self.lens = RANGE[2]
        self.seq = 0
        self.moves: list[float] = []
        self.closed = False

    def next_scene(self) -> None:
        self.scene += 1
        self.focus += 1.0

    def _render(self) -> np.ndarray:
        rng = np.random.default_rng(self.scene)
        w, h = self.size
        base = cv2.resize(rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8), (w, h),
                          interpolation=cv2.INTER_NEAREST).astype(np.float32)
        blurred = convolve(base, disk_psf(1.5 * abs(self.lens - self.focus)))
        return np.clip(blurred, 0, 255).astype(np.uint8)

    def _frame(self, kind: str) -> Frame:
        self.seq += 1
        return Frame(self._render(), self.seq, 1_700_000_000.0 + self.seq, kind,
                     {"source": self.name, "lens_position": self.lens, "exposure_us": 8000, "analogue_gain": 1.5})

    def open(self) -> None:
        pass

    def read(self, timeout: float) -> Frame:
        return self._frame("continuous")

    def capture_still(self) -> Frame:
        return self._frame("still")

    def set_lens_position(self, dioptres: float) -> float | None:
        self.lens = min(max(dioptres, RANGE[0]), RANGE[1])
        self.moves.append(self.lens)
        return self.lens

    def lens_range(self) -> tuple[float, float, float] | None:
        return RANGE

    def autofocus(self) -> float | None:
        return self.set_lens_position(self.focus)

    def close(self) -> None:
        self.closed = True


def sharpness(path: Path) -> float:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def scene_sleeper(camera: FakeLensCamera, interval: float):
    """time.sleep stand-in: the operator re-aims the camera during the pause between scenes."""
    def sleep(seconds: float) -> None:
        if seconds == interval:
            camera.next_scene()
    return sleep


def test_collects_reference_and_blurred_frames_per_scene(tmp_path: Path) -> None:
    camera = FakeLensCamera()
    plan = CollectPlan(positions=[0.0, 6.0, 20.0], count=2, interval_s=7.0, settle_s=0.0)
    manifest = PairCollector(camera, plan, tmp_path / "pairs", sleep=scene_sleeper(camera, 7.0)).run()

    on_disk = json.loads((tmp_path / "pairs" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert on_disk["format"] == "deblurd-pairs/1" and on_disk["lens_range"] == list(RANGE)
    assert len(on_disk["scenes"]) == 2
    for scene, focus in zip(on_disk["scenes"], (3.0, 4.0)):
        files = scene["files"]
        assert [f["role"] for f in files] == ["reference", "blurred", "blurred", "blurred"]
        assert files[0]["lens_requested"] == "auto" and files[0]["lens_applied"] == focus
        assert [f["lens_requested"] for f in files[1:]] == [0.0, 6.0, 20.0]
        assert [f["lens_applied"] for f in files[1:]] == [0.0, 6.0, 15.0]  # 20 clamped to the lens range
        assert files[1]["metadata"] == {"source": "fake-lens", "lens_position": 0.0, "exposure_us": 8000,
                                        "analogue_gain": 1.5}
        assert all(f["size"] == [96, 72] and f["kind"] == "still" and f["captured_at_iso"] for f in files)
        assert not scene["moved"] and scene["reference_drift"] == 0.0
        paths = [tmp_path / "pairs" / f["file"] for f in files]
        assert all(p.suffix == ".png" and p.is_file() for p in paths)
        sharp = [sharpness(p) for p in paths]
        assert sharp[0] > max(sharp[1:])  # the reference is the sharpest look at the scene
    assert not list((tmp_path / "pairs").rglob(".*"))  # no temporary files left behind


def test_fixed_reference_and_video_mode(tmp_path: Path) -> None:
    camera = FakeLensCamera()
    plan = CollectPlan(positions=[9.0], count=1, reference=3.0, settle_s=0.0, mode="video", image_format="jpg")
    manifest = PairCollector(camera, plan, tmp_path, sleep=lambda s: None).run()
    files = manifest["scenes"][0]["files"]
    assert files[0]["lens_requested"] == 3.0 and files[0]["kind"] == "continuous"
    assert files[1]["file"] == "scene-0001/lens-9.jpg"
    assert camera.moves == [3.0, 9.0, 3.0]  # reference, blurred, back to the reference for the check


def test_scene_that_moves_during_capture_is_marked(tmp_path: Path) -> None:
    camera = FakeLensCamera()
    original = camera.set_lens_position

    def jolt(dioptres: float) -> float | None:
        if len(camera.moves) == 2:  # the subject is swapped before the check look
            camera.scene += 5
        return original(dioptres)

    camera.set_lens_position = jolt
    manifest = PairCollector(camera, CollectPlan([8.0], 1, settle_s=0.0), tmp_path, sleep=lambda s: None).run()
    assert manifest["scenes"][0]["moved"] is True


def test_fixed_focus_camera_is_refused(tmp_path: Path) -> None:
    camera = FakeLensCamera()
    camera.lens_range = lambda: None
    with pytest.raises(NoFocusMotor, match="no focus motor"):
        PairCollector(camera, CollectPlan([1.0], 1), tmp_path).run()


def test_autofocus_without_position_is_an_error(tmp_path: Path) -> None:
    camera = FakeLensCamera()
    camera.autofocus = lambda: None
    with pytest.raises(CameraError, match="--reference"):
        PairCollector(camera, CollectPlan([1.0], 1, settle_s=0.0), tmp_path, sleep=lambda s: None).run()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    collect.add_arguments(parser)
    return parser.parse_args(argv)


def test_run_with_the_fake_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture) -> None:
    camera = FakeLensCamera()
    monkeypatch.setattr(collect, "open_source", lambda cfg: camera)
    args = parse(["--positions", "0,7.5", "--count", "1", "--out", str(tmp_path / "p"), "--settle", "0"])
    assert collect.run(args) == 0
    assert camera.closed
    assert "1 scene(s), 3 images each" in capsys.readouterr().out
    assert (tmp_path / "p" / "scene-0001" / "lens-7.5.png").is_file()


def test_run_on_the_replay_source_reports_fixed_focus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "deblurd.toml"
    config.write_text('[camera]\nsource = "replay"\n')
    args = parse(["--config", str(config), "--positions", "1", "--out", str(tmp_path / "p")])
    assert collect.run(args) == NoFocusMotor.exit_code == 69
    assert "no focus motor" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--positions", "a,b"], ["--positions", "-1"],
                                  ["--positions", "1", "--reference", "near"]])
def test_bad_arguments_are_rejected(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv)
