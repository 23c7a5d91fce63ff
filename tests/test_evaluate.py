"""tools/eval/evaluate.py on the real shipped packs with a tiny --limit: the report's files and keys, finite metrics,
blurred-input scores equal to a direct skimage computation, and a manifest update that keeps the checksums."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

pytest.importorskip("matplotlib")
from deblurd.optics import blur  # noqa: E402
from deblurd.restore.inference import ModelPack  # noqa: E402
from deblurd.restore.manifest import load_manifest  # noqa: E402
from tools.data import sources as data  # noqa: E402
from tools.eval import digits as eval_digits
from tools.eval import photo as eval_photo
from tools.eval import realistic as eval_realistic  # noqa: E402
from tools.eval import sweep as ev  # noqa: E402
from tools.eval.evaluate import main as evaluate_main  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REPORT_FILES = ("report.md", "report.json", "sweep.png", "examples.png", "confusion.png")


def shipped(pack: str) -> Path:
    pack_dir = REPO / "models" / pack
    if not (pack_dir / "manifest.json").exists():
        pytest.skip(f"pack {pack} is not exported yet (tools/train/export.py)")
    try:
        data.photo_files("validation") if pack == "photo" else data.digits(pack, "test")
    except data.DataMissing as missing:
        pytest.skip(str(missing))
    return pack_dir


def finite_metrics(result: dict) -> list[float]:
    values = [v for level in result["levels"].values() for m in level["rows"].values() for v in m.values()]
    return values + [p[row][k] for p in result["sweep"] for row in (ev.INPUT, ev.ROUTED) for k in ev.METRICS]


def check_report(out: Path, argv: list[str]) -> dict:
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    assert (out / "report.md").read_text().startswith("```sh\npython -m tools.eval " + " ".join(argv) + "\n")
    result = json.loads((out / "report.json").read_text())
    assert {"pack", "command", "levels", "sweep", "classifier", "targets", "notes", "samples"} <= result.keys()
    assert set(result["levels"]) == {"semi", "heavy"}
    assert all(math.isfinite(v) for v in finite_metrics(result))
    for c in result["classifier"].values():
        assert sum(map(sum, c["matrix"])) == c["samples"] > 0 and 0 <= c["accuracy"] <= 1
    assert all({"target", "value", "pass"} <= t.keys() for t in result["targets"])
    at_sweep = next(c for name, c in result["classifier"].items() if name.startswith("at the sweep"))
    wrong = at_sweep["samples"] - int(np.trace(np.array(at_sweep["matrix"])))
    assert (result["misroutes"]["frames"], result["misroutes"]["of"]) == (wrong, at_sweep["samples"])
    return result


def direct_scores(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Mean PSNR and SSIM of (blurred, truth) pairs straight from skimage."""
    psnr = np.mean([peak_signal_noise_ratio(t, b, data_range=1) for b, t in pairs])
    ssim = np.mean([structural_similarity(t.astype(np.float64), b.astype(np.float64), data_range=1) for b, t in pairs])
    return float(psnr), float(ssim)


@pytest.mark.parametrize("pack", ["mnist", "fashion-mnist"])
def test_digit_protocol_report(pack: str, tmp_path: Path):
    shipped(pack)
    argv = ["--pack", pack, "--limit", "2", "--out", str(tmp_path)]
    evaluate_main(argv)
    result = check_report(tmp_path, argv)
    assert [p["amount"] for p in result["sweep"]] == list(blur.PAPER_SWEEP_SIGMAS)
    assert "seed paper, Table 2 (level not stated)" in result["reference"]
    images = data.digits(pack, "test")[ev.sample_indices(len(data.digits(pack, "test")), 2, 0)]
    for level, sigma in eval_digits.DIGIT_LEVELS.items():
        truths = [blur.paper_upscale(x) for x in images]
        expected = direct_scores([(blur.paper_blur(t, sigma), t) for t in truths])
        got = result["levels"][level]["rows"][ev.INPUT]
        assert (got["psnr"], got["ssim"]) == pytest.approx(expected, abs=1e-5)
        assert {ev.ROUTED, f"ours, {level} generator"} <= set(result["levels"][level]["rows"])


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """One quick photo evaluation (one photo, short grids, no paper runs) on a private copy of the shipped pack."""
    root = tmp_path_factory.mktemp("evaluate")
    models = root / "models"
    shutil.copytree(shipped("photo"), models / "photo")
    out = root / "report"
    argv = ["--pack", "photo", "--limit", "1", "--out", str(out), "--models", str(models), "--runs",
            str(root / "no-runs"), "--update-manifest", "--quick"]
    evaluate_main(argv)
    return out, models / "photo", argv


def test_photo_report(photo_run):
    out, _, argv = photo_run
    result = check_report(out, argv)
    rows = result["levels"]["semi"]["rows"]
    assert {"Wiener (true PSF)", "Richardson-Lucy (true PSF)", "ours int8, semi generator",
            "ours float, semi generator", ev.ROUTED} <= set(rows)
    assert any("skipped, no trained run" in n for n in result["notes"])
    realistic = result["realistic"]
    assert realistic["frames"] == 1 and set(realistic["rows"]) == set(eval_realistic.ROWS)
    assert all(set(areas) <= set(eval_realistic.AREAS) and areas for areas in realistic["rows"].values())
    assert "## Realistic defocus" in (out / "report.md").read_text()
    assert any(t["target"].startswith("realistic: ") for t in result["targets"])
    manifest = load_manifest(shipped("photo"))
    _, truths = eval_photo.photo_truths("validation", manifest.working_width, 1, 0)
    degrade = eval_photo.photo_degrader(manifest.blur)
    for level, radius in eval_photo.PHOTO_LEVELS.items():
        pairs = [(degrade(t, radius, (0, i))[0], t) for i, t in enumerate(truths)]
        got = result["levels"][level]["rows"][ev.INPUT]
        assert (got["psnr"], got["ssim"]) == pytest.approx(direct_scores(pairs), abs=1e-5)


def test_update_manifest_keeps_checksums(photo_run):
    _, pack_dir, _ = photo_run
    original, updated = load_manifest(shipped("photo")), load_manifest(pack_dir)
    assert updated.models == original.models
    assert {"command", "levels", "sweep", "classifier_accuracy", "targets"} <= updated.evaluation.keys()
    ModelPack.load(pack_dir, "int8")


def test_confusion_counts_true_rows_and_predicted_columns():
    c = ev.confusion(["sharp", "semi", "heavy", "heavy"], ["sharp", "heavy", "heavy", "semi"])
    assert c["matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]] and c["accuracy"] == 0.5
