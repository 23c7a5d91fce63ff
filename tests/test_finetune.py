"""tools/train/finetune.py's parts: pairs classed through the lens profile, held-out scenes, and its training
batches."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")

from deblurd.capture.sim_camera import SimCamera  # noqa: E402
from deblurd.commands.calibrate import Pair  # noqa: E402
from deblurd.commands.collect import CollectPlan, PairCollector  # noqa: E402
from deblurd.optics.lens_profile import PROFILE_NAME, FitQuality, LensCalibration, LensProfileError  # noqa: E402
from deblurd.restore.manifest import load_manifest  # noqa: E402
from tools.train import finetune  # noqa: E402


def profile(k640: float = 0.6, rim: float = 0.3) -> LensCalibration:
    return LensCalibration(lens_id="test", created="2026-01-01", source="sim", pairs="x",
                           radius_per_dioptre=k640 * 4608 / 640, field_gain=0.0, rim=rim, soften_px=0.2,
                           chroma=(0.02, 0.0, -0.02), regions=[], measurements=[],
                           fit=FitQuality(points=1, rms_relative_error=0, median_relative_error=0,
                                          max_relative_error=0, r2=1))


def lens_pair(scene: str, defocus: float, blurred: np.ndarray, sharp: np.ndarray, label: str) -> finetune.LensPair:
    return finetune.LensPair(Pair(scene, Path("r.png"), Path("b.png"), 0.5, 0.5 + defocus), blurred, sharp, 1.0, label)


@pytest.fixture(scope="module")
def sim_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    camera = SimCamera((640, 480), fps=1000.0, seed=2)
    camera.open()
    out = tmp_path_factory.mktemp("pairs")
    PairCollector(camera, CollectPlan([2.5, 8.5], 2, "auto", 0.0, 0.0, "video"), out, sleep=lambda s: None).run()
    return out


def test_pairs_are_classed_by_the_blur_the_profile_expects(sim_pairs: Path, photo_pack_dir: Path) -> None:
    manifest = load_manifest(photo_pack_dir)
    _, pairs = finetune.read_pairs(sim_pairs)
    loaded = finetune.load_lens_pairs(pairs, profile(), manifest)
    by_defocus = {round(p.pair.defocus, 2): p for p in loaded}
    assert by_defocus[2.0].radius == pytest.approx(1.2) and by_defocus[2.0].label == "semi"
    assert by_defocus[8.0].radius == pytest.approx(4.8) and by_defocus[8.0].label == "heavy"
    assert all(p.blurred.shape == p.sharp.shape == (480, 640) and p.sharp.dtype == np.float32 for p in loaded)
    assert finetune.load_lens_pairs(pairs, profile(k640=0.1), manifest)[0].label == "sharp"


def test_every_fifth_scene_is_held_out_unless_a_folder_is_given() -> None:
    flat = np.zeros((4, 4), np.float32)
    pairs = [lens_pair(f"scene-{i:04d}", d, flat, flat, "semi") for i in range(10) for d in (2.0, 8.0)]
    training, held = finetune.split(pairs, None)
    assert {p.pair.scene for p in held} == {"scene-0004", "scene-0009"} and len(training) == 16
    assert not {p.pair.scene for p in held} & {p.pair.scene for p in training}
    assert finetune.split(pairs, pairs[:2]) == (pairs, pairs[:2])


def test_batches_mix_aligned_collected_crops_and_synthesis_through_the_lens() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.random((96, 128)).astype(np.float32)
    collected = finetune.LensBatches([lens_pair("s", 2.0, sharp + 1, sharp, "semi")], profile(), (1.0, 3.0), 0.0, 1)
    x, y = collected(6, 32)
    assert x.shape == y.shape == (6, 32, 32, 1)
    np.testing.assert_allclose(x, y + 1, atol=1e-6, err_msg="the blurred crop comes from where the sharp one does")
    synthesised = finetune.LensBatches([], profile(), (3.0, 6.0), 0.5, 2)
    assert synthesised.synth_share == 1.0, "with no collected pairs of a class, all of it is synthesised"
    x, y = synthesised(4, 64)
    assert x.shape == (4, 64, 64, 1)
    smooth = [cv2.GaussianBlur(a[..., 0], (0, 0), 1.5) for a in (x, y)]  # below the sensor noise's scale
    detail = [float(np.mean(np.abs(np.diff(a, axis=2)))) for a in smooth]
    assert detail[0] < 0.8 * detail[1], "the lens's PSF blurs the synthesised input"


def test_the_profile_is_read_or_calibrated_from_the_pairs(sim_pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(LensProfileError, match="no lens profile"):
        finetune.obtain_profile(sim_pairs, tmp_path / "missing.json")
    made = finetune.obtain_profile(sim_pairs, None)
    assert (sim_pairs / PROFILE_NAME).exists() and made.lens_id == "sim-cm3-2"
    assert finetune.obtain_profile(sim_pairs, None) == made, "read back, not calibrated again"
    (sim_pairs / PROFILE_NAME).write_text("{")
    with pytest.raises(LensProfileError, match="run `deblurd calibrate` again"):
        finetune.obtain_profile(sim_pairs, None)


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        finetune.parse_args(["--pairs", "x", "--steps", "0"])
    assert "--steps and --batch must be 1 or more" in capsys.readouterr().err
    args = finetune.parse_args(["--pairs", "x", "--steps", "5"])
    assert args.command == "python -m tools.train.finetune --pairs x --steps 5" and args.pack == "photo"


def test_a_pack_without_a_working_width_is_refused(tmp_path: Path, sim_pairs: Path) -> None:
    digits = Path(__file__).resolve().parent.parent / "models" / "mnist"
    if not (digits / "manifest.json").exists():
        pytest.skip("no mnist pack")
    assert json.loads((digits / "manifest.json").read_text())["blur"]["psf"] == "gaussian"
    with pytest.raises(SystemExit, match="not a photo pack"):
        finetune.finetune(finetune.parse_args(["--pairs", str(sim_pairs), "--pack", "mnist", "--models",
                                               str(digits.parent), "--out", str(tmp_path / "p")]))
