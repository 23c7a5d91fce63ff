"""tools/eval/nonblind_probe.py at a tiny size: the report's rows, held-out photos only, equal-size variants, and a
rerun that resumes from the checkpoints instead of training again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tools.data import sources as data
from tools.eval import nonblind_probe as probe

REPO = Path(__file__).resolve().parent.parent


def run(tmp: Path, steps: int) -> tuple[dict, str]:
    argv = ["--steps", str(steps), "--ckpt-every", "1", "--batch", "2", "--patch", "32", "--photos", "1",
            "--train-photos", "2", "--radii", "2", "5", "--work", str(tmp / "work"), "--out", str(tmp / "out")]
    done = subprocess.run([sys.executable, "-m", "tools.eval.nonblind_probe", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp / "out" / "report.md").read_text().startswith(
        "```sh\npython -m tools.eval.nonblind_probe " + " ".join(argv) + "\n```")
    return json.loads((tmp / "out" / "report.json").read_text()), done.stdout


def test_tiny_probe_reports_every_row_and_resumes(tmp_path):
    try:
        validation = {f"{data.photo_name(p)}:{p.name}" for p in data.photo_files("validation")}
    except data.DataMissing as missing:
        pytest.skip(str(missing))
    result, log = run(tmp_path, 2)
    rows = {"blurred input", "Wiener (true PSF)", "Richardson-Lucy (true PSF)", "blind U-Net", "radius U-Net",
            "wiener+radius U-Net"}
    assert set(result["psnr"]) == rows
    assert all(set(by_radius) == {"2", "5"} and all(np.isfinite(list(by_radius.values())))
               for by_radius in result["psnr"].values())
    assert result["psnr"]["Wiener (true PSF)"]["5"] > result["psnr"]["blurred input"]["5"]
    setup = result["setup"]
    assert set(setup["heldout_photos"]) <= validation and not set(setup["train_photos"]) & validation
    macs = [v["macs_per_pixel"] for v in result["variants"].values()]
    assert max(macs) <= 20_000 and max(macs) - min(macs) < 0.05 * max(macs)
    assert all(v["steps"] == 2 for v in result["variants"].values())

    assert "blind: step 1/2" in log and "blind: step 2/2" in log
    longer, log = run(tmp_path, 3)
    assert all(v["steps"] == 3 for v in longer["variants"].values())
    assert "blind: step 3/3" in log and "blind: step 1/3" not in log and "blind: step 2/3" not in log


def test_batches_are_the_same_for_every_variant_and_seeded():
    photos = [np.random.default_rng(1).random((120, 160)).astype(np.float32)]
    blind = probe.batch(photos, 7, 2, 32, 0, "blind")
    wiener = probe.batch(photos, 7, 2, 32, 0, "wiener+radius")
    assert np.array_equal(blind[0][..., 0], wiener[0][..., 0]) and np.array_equal(blind[1], wiener[1])
    assert wiener[0].shape == (2, 32, 32, 3)
    assert not np.array_equal(probe.batch(photos, 8, 2, 32, 0, "blind")[1], blind[1])
