"""Pack what a lent GPU needs for one training call, here, before the call: the device machine has JAX but no
Keras, no pydantic, no photo packages and no network, and what travels is the repository plus up to 8 carried paths
in 64 MiB.

    python -m tools.train.bundle      # writes .devdata/photos, .devdata/init and .whl (both ignored by git)

then, in one device call, `bash tools/train/on_device.sh` with `.devdata` and `.whl` carried (docs/models.md).
The wheels are the versions installed here, for the device's Python 3.12; the runs a job warm-starts from are copied
without their checkpoints, which the device does not read.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

from tools.train.cpu import RUNS
from tools.train.gpu import export_photos

REPO = Path(__file__).resolve().parents[2]
DEVDATA = REPO / ".devdata"
WHEELS = REPO / ".whl"
# What tools.train.gpu imports that the device image lacks (keras's and pydantic's own needs it has).
DEVICE_MISSING = ("keras", "namex", "optree", "pydantic", "pydantic-core", "annotated-types", "typing-inspection")
DEVICE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
TRAVEL_LIMIT = 64 * 2**20
# The run folders the default jobs of on_device.sh continue from (a refiner on --synth device starts afresh).
INIT_RUNS = ("photo-classifier-supervised-mapper-radius-realistic",)


def pins() -> list[str]:
    """Each missing package at the version installed here, so the device trains with the code the tests ran."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in DEVICE_MISSING]


def download_wheels(dest: Path) -> list[Path]:
    """pip download of the pinned wheels for the device's CPython on manylinux x86-64, into an emptied folder: two
    versions of one package would stop the device's whole install."""
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in dest.glob("*.whl"):
        wheel.unlink()
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", DEVICE_PYTHON, "--implementation", "cp", *platforms, "-d", str(dest),
                    *pins()], check=True)
    return sorted(dest.glob("*.whl"))


def copy_init(runs: Path, dest: Path, names: tuple[str, ...] = INIT_RUNS) -> list[str]:
    """The final weights and run.json of each named run that exists, the only files a warm start reads."""
    copied = []
    for name in names:
        src = runs / name
        if not (src / "final.weights.h5").is_file():
            continue
        (dest / name).mkdir(parents=True, exist_ok=True)
        for file in ("final.weights.h5", "run.json"):
            if (src / file).is_file():
                shutil.copy2(src / file, dest / name / file)
        copied.append(name)
    return copied


def tree_bytes(*folders: Path) -> int:
    """Bytes of the tracked and untracked-not-ignored files plus the given folders: what a device call sends."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    tracked = sum((REPO / name).stat().st_size for name in listed if name and (REPO / name).is_file())
    return tracked + sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, default=RUNS, help="where the runs to warm-start from are")
    args = p.parse_args(argv)
    photos = export_photos(DEVDATA / "photos")
    init = copy_init(args.runs, DEVDATA / "init")
    wheels = download_wheels(WHEELS)
    size = tree_bytes(DEVDATA, WHEELS)
    print(f"{photos} photos, {len(wheels)} wheels, warm starts: {', '.join(init) or 'none'}")
    print(f"a device call sends {size / 2**20:.1f} MiB of {TRAVEL_LIMIT / 2**20:.0f} MiB")
    if size > TRAVEL_LIMIT:
        raise SystemExit("too much to travel: remove untracked files or carry fewer runs")
    print("next: a device call of `bash tools/train/on_device.sh` carrying .devdata and .whl")


if __name__ == "__main__":
    main()
