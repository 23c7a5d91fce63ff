"""The one-call GPU training: tools.train.bundle packs what the device lacks, tools/train/on_device.sh trains there and
leaves the runs' tars in $OUT. The device half runs here on CPU JAX with a tiny job."""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from conftest import REPO, needs_packages  # noqa: E402

from tools.train import bundle, models  # noqa: E402
from tools.train import gpu as train_gpu  # noqa: E402

SCRIPT = REPO / "tools" / "train" / "on_device.sh"


def script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No wheels and no bundle: this machine has the packages and the photo packages."""
    return {**os.environ, "OUT": str(tmp_path / "out"), "WHEELS": str(tmp_path / "no-wheels"),
            "DEVDATA": str(tmp_path / "no-devdata"), "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu", **extra}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (.ci/run installs it)")
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_without_out_the_script_says_what_to_set(tmp_path):
    env = script_env(tmp_path)
    del env["OUT"]
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "set OUT to the folder whose files come back" in result.stderr


def test_the_default_jobs_are_the_non_blind_pack_and_fit_one_call(tmp_path):
    """The jobs the script trains without arguments are real architectures for their roles, on the device's
    synthesis, warm-started from the bundle's init runs, and their seconds leave a 600 s call room to start."""
    (tmp_path / "out").mkdir()
    (tmp_path / "devdata" / "init").mkdir(parents=True)
    recorder = tmp_path / "python"
    recorder.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path / 'argv'}\nmkdir -p \"$5\"\n"
                        "touch \"$5/photo-x.tar\"\n")
    recorder.chmod(0o755)
    subprocess.run(["bash", str(SCRIPT)], env=script_env(tmp_path, PYTHON=str(recorder),
                   DEVDATA=str(tmp_path / "devdata")), check=True, capture_output=True, timeout=60)
    argv = (tmp_path / "argv").read_text().split("\n")[:-1]
    assert argv[:2] == ["-m", "tools.train.gpu"]
    args = train_gpu.parse_args(argv[2:])
    assert args.synth == "device" and args.init_dir == str(tmp_path / "devdata" / "init")
    roles = {job.role: job.arch for job in args.job}
    assert roles == {"classifier": "mapper-radius", "semi": "nonblind-wiener", "heavy": "nonblind-heavy-wiener"}
    assert roles["classifier"] in models.RADIUS_MAPPERS
    assert all(arch in models.GENERATOR_INPUTS for role, arch in roles.items() if role != "classifier")
    assert sum(job.seconds for job in args.job) <= 450
    assert (tmp_path / "out" / "photo-x.tar").is_file()


def test_a_call_cut_short_still_brings_back_the_jobs_that_finished(tmp_path):
    """A job that finished before a later one failed (or the call's limit struck) is in $OUT all the same."""
    (tmp_path / "out").mkdir()
    trainer = tmp_path / "python"
    trainer.write_text("#!/bin/sh\ntouch \"$5/photo-first.tar\"\nsleep 5\necho 'second job failed' >&2\nexit 1\n")
    trainer.chmod(0o755)
    result = subprocess.run(["bash", str(SCRIPT), "semi:nonblind-wiener:1"], env=script_env(tmp_path,
                            PYTHON=str(trainer)), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert (tmp_path / "out" / "photo-first.tar").is_file()
    assert "second job failed" in (tmp_path / "out" / "train.log").read_text()


@needs_packages
def test_a_tiny_job_on_cpu_jax_leaves_its_run_tar_and_log_in_out(tmp_path):
    pytest.importorskip("jax")
    (tmp_path / "out").mkdir()
    result = subprocess.run(["bash", str(SCRIPT), "semi:nonblind-wiener:1", "--", "--batch", "4", "--patch", "48",
                             "--epoch-steps", "2", "--warmup-steps", "4", "--val-size", "4"],
                            env=script_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    name = "photo-semi-supervised-nonblind-wiener-device"
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert out == [f"{name}.tar", "train.log"], "only what comes back: at most 8 files, none in subfolders"
    with tarfile.open(tmp_path / "out" / f"{name}.tar") as tar:
        meta = json.load(tar.extractfile(f"{name}/run.json"))
        assert f"{name}/final.weights.h5" in tar.getnames()
    assert meta["steps_done"] == 2 and meta["synthesis"] == "device"
    log = (tmp_path / "out" / "train.log").read_text()
    assert f"{name}: 2 steps" in log and "on_device:" in log


def test_the_wheels_are_pinned_to_the_versions_tested_here():
    pins = dict(pin.split("==") for pin in bundle.pins())
    assert set(pins) == set(bundle.DEVICE_MISSING)
    assert pins["keras"] == importlib.metadata.version("keras")
    assert pins["pydantic-core"] == importlib.metadata.version("pydantic-core")


def test_init_runs_travel_without_their_checkpoints(tmp_path):
    runs = tmp_path / "runs"
    run = runs / "photo-classifier-supervised-mapper-radius-realistic"
    (run / "ckpt").mkdir(parents=True)
    for name in ("final.weights.h5", "run.json", "losses.csv", "ckpt/ckpt-5.index"):
        (run / name).write_text(name)
    (runs / "photo-semi-elsewhere").mkdir()
    copied = bundle.copy_init(runs, tmp_path / "init", (run.name, "photo-semi-elsewhere", "absent"))
    assert copied == [run.name], "a run without final weights is no warm start"
    assert sorted(p.name for p in (tmp_path / "init" / run.name).iterdir()) == ["final.weights.h5", "run.json"]


def test_the_travel_size_counts_the_repository_and_the_carried_folders(tmp_path):
    (tmp_path / "carried").mkdir()
    (tmp_path / "carried" / "w.whl").write_bytes(b"x" * 1000)
    repo_only = bundle.tree_bytes()
    assert bundle.tree_bytes(tmp_path / "carried") == repo_only + 1000
    assert (REPO / "README.md").stat().st_size < repo_only < bundle.TRAVEL_LIMIT
