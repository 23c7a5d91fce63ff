"""The real-lens loop end to end on the simulated Camera Module 3, as a user runs it: `deblurd collect`,
`deblurd calibrate`, `python -m tools.train.finetune` (a few steps; skipped only without TensorFlow), then `deblurd run`
with the new pack and `deblurd doctor` on it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from deblurd.optics.lens_profile import PROFILE_NAME, load_profile
from deblurd.output.store import read_index
from deblurd.restore.manifest import load_manifest

REPO = Path(__file__).resolve().parent.parent


def command(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def test_collect_calibrate_finetune_export_and_run(tmp_path: Path, photo_pack_dir: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "deblurd.toml"
    config.write_text(f'[camera]\nsource = "sim"\nsim_seed = 2\n[lens]\nmode = "manual"\nposition_dioptres = 6.0\n'
                      f'[output]\ndir = "{state}"\nmax_per_minute = 0\n[models]\ndir = "{photo_pack_dir.parent}"\n')
    pairs = tmp_path / "pairs"
    command("-m", "deblurd", "collect", "--config", str(config), "--positions", "3.5,9", "--count", "5",
            "--mode", "video", "--interval", "0", "--settle", "0", "--out", str(pairs))
    assert len(json.loads((pairs / "manifest.json").read_text())["scenes"]) == 5

    calibrated = command("-m", "deblurd", "calibrate", "--config", str(config), "--pairs", str(pairs))
    profile = load_profile(state / PROFILE_NAME)
    assert "lens profile written to" in calibrated.stdout and profile.lens_id == "sim-cm3-2"

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: the fine-tuning step runs on a PC with tools installed")
    models = tmp_path / "models"
    tuned = command("-m", "tools.train.finetune", "--pairs", str(pairs), "--profile", str(state / PROFILE_NAME),
                    "--pack", "photo", "--models", str(photo_pack_dir.parent), "--out", str(models / "photo-sim-cm3-2"),
                    "--steps", "2", "--batch", "2", "--patch", "64")
    assert "set pack = \"photo-sim-cm3-2\"" in tuned.stdout
    manifest = load_manifest(models / "photo-sim-cm3-2")
    assert manifest.name == "photo-sim-cm3-2" and manifest.version.endswith("+sim-cm3-2")
    base = load_manifest(photo_pack_dir)
    assert manifest.models["classifier"] == base.models["classifier"], "the classifier is kept as it was"
    for role in ("semi", "heavy"):
        assert manifest.models[role].sha256 != base.models[role].sha256
        assert manifest.models[role].training["commands"][-1].startswith("python -m tools.train.finetune")
    evaluation = manifest.evaluation["lens_pairs"]
    assert evaluation["held_out_pairs"] == 2 and {"photo-sim-cm3-2 (blur map)", "photo (blur map)"} <= set(
        evaluation["rows"][0])

    config.write_text(config.read_text().replace(f'dir = "{photo_pack_dir.parent}"',
                                                 f'dir = "{models}"\npack = "photo-sim-cm3-2"'))
    command("-m", "deblurd", "run", "--config", str(config), "--frames", "2")
    sidecars = [json.loads((state / r["files"]["sidecar"]).read_text()) for r in read_index(state)]
    assert len(sidecars) == 2 and all(s["model"].startswith("photo-sim-cm3-2/") for s in sidecars)
    assert all(s["lens_position"] == 6.0 and s["source"] == "sim-cm3-2" for s in sidecars)
    doctor = subprocess.run([sys.executable, "-m", "deblurd", "doctor", "--config", str(config)], capture_output=True,
                            text=True, timeout=300)
    assert "pack photo-sim-cm3-2" in doctor.stdout and "lens sim-cm3-2" in doctor.stdout
