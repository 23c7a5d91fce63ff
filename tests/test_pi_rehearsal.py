"""The Pi rehearsal (deploy/pi-rehearsal.sh): the script is shellcheck-clean, the parity comparison counts levels
as the daemon writes them, and, where a rehearsal has left its arm64 rootfs, every shipped model agrees with this
machine (>= 99.9 % of pixels within 1 level, identical routing labels on the samples)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tools.bench.parity import WITHIN_TARGET, compare_arrays

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


@pytest.mark.skipif(os.environ.get("DEBLURD_PI_PARITY") != "1" or not ROOTFS_PYTHON.exists() or os.geteuid() != 0,
                    reason="opt-in (DEBLURD_PI_PARITY=1, about 8 minutes under emulation): needs root and the arm64 "
                           "rootfs a `make pi-rehearsal` leaves (docs/pi-rehearsal.md)")
def test_arm64_models_agree_with_this_machine(tmp_path: Path) -> None:
    """The shipped models in the emulated arm64 rootfs (XNNPACK's Arm kernels) against this machine's."""
    host = tmp_path / "host.npz"
    subprocess.run([sys.executable, "-m", "tools.bench.parity", "run", str(host)], cwd=REPO, check=True,
                   timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    work = ROOTFS / "root" / "parity-test"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(REPO / "tools", work / "tools")
    shutil.copytree(REPO / "models", work / "models")
    shutil.copy(host, work / "host.npz")
    proc_mounted = os.path.ismount(ROOTFS / "proc")
    if not proc_mounted:
        subprocess.run(["mount", "-t", "proc", "proc", str(ROOTFS / "proc")], check=True)
    try:
        subprocess.run(["chroot", str(ROOTFS), "env", "-i", "PATH=/usr/bin:/bin", "HOME=/root",
                        "PYTHONPATH=/root/parity-test", "/opt/deblurd/venv/bin/python", "-m", "tools.bench.parity",
                        "run", "/root/parity-test/arm64.npz", "--inputs", "/root/parity-test/host.npz",
                        "--models", "/root/parity-test/models"], check=True, timeout=900)
        rows, differ = compare_arrays(dict(np.load(host)), dict(np.load(work / "arm64.npz")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not proc_mounted:
            subprocess.run(["umount", str(ROOTFS / "proc")], check=True)
    images = [r for r in rows if r.kind == "image"]
    assert len(images) == 12 and all(r.within_1 >= WITHIN_TARGET for r in images), images
    assert differ == []
