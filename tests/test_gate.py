"""tools/eval/gate.py on the shipped photo pack's real evaluation: a pass, a headline regression, a sharp-photo
regression, the command's exit status, and a shipped folder left byte-identical when the gate refuses."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.eval import gate

REPO = Path(__file__).resolve().parent.parent
PACK = REPO / "models" / "photo"


@pytest.fixture()
def shipped_eval() -> dict:
    manifest = PACK / "manifest.json"
    if not manifest.exists() or not json.loads(manifest.read_text()).get("evaluation"):
        pytest.skip("the photo pack has no evaluation in its manifest")
    return json.loads(manifest.read_text())["evaluation"]


def with_evaluation(tmp: Path, name: str, evaluation: dict) -> Path:
    """A copy of the shipped manifest carrying `evaluation` (the form tools.eval --update-manifest writes)."""
    doc = json.loads((PACK / "manifest.json").read_text()) | {"evaluation": evaluation}
    path = tmp / name / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    return path


def run_gate(new: Path, shipped: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.eval.gate", "--new", str(new), "--shipped", str(shipped)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_pack_equal_or_better_passes(tmp_path, shipped_eval):
    better = copy.deepcopy(shipped_eval)
    better["levels"]["heavy"]["ours, full route"]["psnr"] += 0.5
    better["levels"]["semi"]["ours, full route"]["psnr"] -= 0.09
    done = run_gate(with_evaluation(tmp_path, "new", better), PACK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    heavy = shipped_eval["levels"]["heavy"]
    figures = [heavy[row]["psnr"] for row in ("blurred input", "Wiener (true PSF)", "Richardson-Lucy (true PSF)",
                                              "ours, full route")]
    row = " | ".join(f"{v:.2f}" for v in [*figures, figures[-1] + 0.5])
    assert f"| heavy (radius 5), full route | {row} | +0.50 |" in done.stdout


def test_a_headline_row_below_the_shipped_pack_is_refused(tmp_path, shipped_eval):
    worse = copy.deepcopy(shipped_eval)
    worse["realistic"]["rows"]["ours, full route (blur map)"]["defocused"] -= 0.2
    done = run_gate(with_evaluation(tmp_path, "new", worse), PACK)
    assert done.returncode == 1
    assert "REFUSED" in done.stdout and "realistic, defocused: 31.89 dB, 0.20 dB below the shipped pack" in done.stdout


def test_a_loss_on_sharp_photos_is_refused(tmp_path, shipped_eval):
    """Both packs lose on sharp photos here, so only the sharp rule can refuse it."""
    shipped_eval["sweep"]["0"]["psnr"] = shipped_eval["sweep"]["0"]["input_psnr"] - 0.06
    old = with_evaluation(tmp_path, "old", shipped_eval)
    verdict = gate.judge(gate.load_evaluation(old), gate.load_evaluation(old))
    assert not verdict.passed and verdict.reasons == [
        "sweep radius 0, full route: sharp photos lose 0.06 dB against the input (allowed 0.05)"]
    assert run_gate(old, old).returncode == 1


def test_a_missing_headline_row_is_refused(shipped_eval):
    fewer = copy.deepcopy(shipped_eval)
    del fewer["sweep"]["7"]
    verdict = gate.judge(fewer, shipped_eval)
    assert not verdict.passed and "sweep radius 7, full route" in verdict.reasons[0]


def test_report_json_and_manifest_give_the_same_rows(shipped_eval):
    report = REPO / "reports" / "photo" / "report.json"
    if json.loads(report.read_text())["date"] != shipped_eval["date"]:
        pytest.skip("reports/photo is not the run the manifest carries")
    assert gate.rows_of(gate.load_evaluation(report)) == gate.rows_of(shipped_eval)


def candidate_and_shipped(tmp_path: Path) -> tuple[Path, Path]:
    shipped, candidate = tmp_path / "models" / "photo", tmp_path / "models" / ".candidate" / "photo"
    shutil.copytree(PACK, shipped)
    shutil.copytree(PACK, candidate)
    (candidate / "semi.tflite").write_bytes(b"a retrained model")
    return candidate, shipped


def test_refusal_leaves_the_shipped_folder_byte_identical(tmp_path, shipped_eval, capsys):
    candidate, shipped = candidate_and_shipped(tmp_path)
    before = tree_digest(shipped)
    worse = copy.deepcopy(shipped_eval)
    worse["levels"]["semi"]["ours, full route"]["psnr"] -= 0.11
    assert not gate.replace_if_better(candidate, shipped, worse, shipped_eval).passed
    assert tree_digest(shipped) == before
    assert candidate.exists() and "REFUSED" in capsys.readouterr().out


def test_pass_moves_the_candidate_in_and_force_is_logged(tmp_path, shipped_eval, capsys):
    candidate, shipped = candidate_and_shipped(tmp_path)
    expected = tree_digest(candidate)
    assert gate.replace_if_better(candidate, shipped, shipped_eval, shipped_eval).passed
    assert tree_digest(shipped) == expected and not candidate.exists()
    assert sorted(p.name for p in shipped.parent.iterdir()) == [".candidate", "photo"]

    candidate, _ = candidate_and_shipped(tmp_path / "forced")
    worse = copy.deepcopy(shipped_eval)
    worse["levels"]["semi"]["ours, full route"]["psnr"] -= 1.0
    forced_shipped = tmp_path / "forced" / "models" / "photo"
    assert not gate.replace_if_better(candidate, forced_shipped, worse, shipped_eval, force=True).passed
    assert (forced_shipped / "semi.tflite").read_bytes() == b"a retrained model"
    assert "FORCED: replacing" in capsys.readouterr().out
