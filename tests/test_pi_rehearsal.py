"""The Pi rehearsal (deploy/pi-rehearsal.sh): the script is shellcheck-clean, the parity comparison counts levels
as the daemon writes them and counts only XNNPACK runs, and, where a rehearsal has left its arm64 rootfs, every
shipped model agrees with this machine (>= 99.9 % of pixels within 1 level, identical routing labels)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deblurd.restore.tflite import TfliteModel
from tools.bench.parity import WITHIN_TARGET, compare, compare_arrays, kernel_mismatches

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "pi-rehearsal.sh"
ROOTFS = Path(os.environ.get("DEBLURD_REHEARSAL_CACHE", "/var/cache/deblurd-rehearsal")) / "rootfs"
ROOTFS_PYTHON = ROOTFS / "opt/deblurd/venv/bin/python"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (.ci/run installs it)")
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_rehearsal_refuses_an_unknown_option() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unknown option --frobnicate" in result.stderr


def _run(outputs: dict[str, np.ndarray], labels: dict[str, str]) -> dict[str, np.ndarray]:
    routing = {name: {"label": label, "shares": {}, "map": None} for name, label in labels.items()}
    return {**{f"out:{k}": v for k, v in outputs.items()}, "routing": np.array(json.dumps(routing))}


def test_compare_counts_8_bit_levels_and_routing_labels() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(2, 250, (4, 16, 16, 1)).astype(np.float32) / 255.0
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    shifted = image.copy()
    shifted[0, 0, :4, 0] += 1 / 255.0   # 4 pixels one level off: still within 1 level
    shifted[1, 0, :2, 0] += 3 / 255.0   # 2 pixels three levels off
    swapped = scores[:, [0, 2, 1]]
    ref = _run({"p/semi.tflite": image, "p/classifier.tflite": scores}, {"p/a.jpg": "semi", "p/b.jpg": "sharp"})
    other = _run({"p/semi.tflite": shifted, "p/classifier.tflite": swapped}, {"p/a.jpg": "semi", "p/b.jpg": "heavy"})
    rows, differ = compare_arrays(ref, other)
    by_model = {r.model: r for r in rows}
    assert by_model["p/semi.tflite"].max_abs == 3 and by_model["p/semi.tflite"].within_1 == 1 - 2 / image.size
    assert by_model["p/classifier.tflite"].within_1 == 0.5  # the second row's argmax moved from heavy to semi
    assert differ == ["p/b.jpg"]
    assert compare_arrays(ref, ref) == ([r.__class__(r.model, r.kind, 0.0, 1.0) for r in rows], [])


def test_compare_fails_unless_both_machines_ran_xnnpack(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """TFLite's builtin int8 kernels round differently on Arm and x86, so only XNNPACK runs (what a Pi runs) count."""
    image = np.full((1, 4, 4, 1), 0.5, np.float32)
    run = _run({"p/semi.tflite": image}, {"p/a.jpg": "semi"})
    np.savez(tmp_path / "x86.npz", **run, **{"kernels:p/semi.tflite": np.array("xnnpack")}, runtime=np.array("x86"))
    np.savez(tmp_path / "arm.npz", **run, **{"kernels:p/semi.tflite": np.array("builtin")}, runtime=np.array("arm"))
    assert compare(tmp_path / "x86.npz", tmp_path / "x86.npz") == 0
    assert compare(tmp_path / "x86.npz", tmp_path / "arm.npz") == 1
    assert "p/semi.tflite: xnnpack/builtin" in capsys.readouterr().out


def test_this_machine_runs_the_int8_models_under_xnnpack() -> None:
    assert TfliteModel(REPO / "models/photo/semi.tflite").kernels == "xnnpack"


@pytest.mark.skipif(os.environ.get("DEBLURD_PI_PARITY") != "1" or not ROOTFS_PYTHON.exists() or os.geteuid() != 0,
                    reason="opt-in (DEBLURD_PI_PARITY=1, about 3 minutes under emulation): needs root and the arm64 "
                           "rootfs a `make pi-rehearsal` leaves (docs/pi-rehearsal.md)")
def test_arm64_models_agree_with_this_machine() -> None:
    """The shipped models in the emulated arm64 rootfs (XNNPACK on a Pi 5's Cortex-A76) against this machine's:
    >= 99.9 % of pixels within 1 level for every image model and identical routing labels on the samples."""
    subprocess.run(["bash", str(SCRIPT), "--parity-only", "--host-python", sys.executable], check=True, timeout=900)
    ref, arm = (dict(np.load(ROOTFS.parent / f"parity-{name}.npz")) for name in ("host", "arm64"))
    assert kernel_mismatches(ref, arm) == []
    rows, differ = compare_arrays(ref, arm)
    images = [r for r in rows if r.kind == "image"]
    assert len(images) == 12 and all(r.within_1 >= WITHIN_TARGET for r in images), images
    assert differ == []
