"""Shared fixtures and helpers: the shipped photo model pack, the bundled samples, the data sets, config builders."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurd.capture.camera import SAMPLES_DIR
from deblurd.config import Config
from deblurd.frames import Frame, Severity
from deblurd.output.store import Result, read_index
from tools.data import sources as data

REPO = Path(__file__).resolve().parent.parent
PHOTO_PACK = REPO / "models" / "photo"


@pytest.fixture(scope="session")
def photo_pack_dir() -> Path:
    if not (PHOTO_PACK / "manifest.json").exists():
        pytest.skip(f"the shipped model pack {PHOTO_PACK} is not exported yet (tools/train/export.py)")
    return PHOTO_PACK


@pytest.fixture(scope="session")
def photo_pack(photo_pack_dir: Path):
    from deblurd.restore.inference import ModelPack

    return ModelPack.load(photo_pack_dir, "int8", "auto", threads=1)


@pytest.fixture
def pack_copy(photo_pack_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shipped pack that a test may damage."""
    return Path(shutil.copytree(photo_pack_dir, tmp_path / "models" / "photo"))


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES_DIR


def read_sample(name: str = "03-heavy.jpg") -> np.ndarray:
    """A bundled replay frame as RGB uint8."""
    return cv2.cvtColor(cv2.imread(str(SAMPLES_DIR / name)), cv2.COLOR_BGR2RGB)


needs_packages = pytest.mark.skipif(
    not (data.FASHION_DIR.exists() and data.MNIST_DIR.exists() and data.OPENCV_DIR.exists()),
    reason="data packages not installed (run `make data`)")
"""For tests that read the training data sets, which `make data` installs."""


def make_config(tmp_path: Path, **areas: dict) -> Config:
    """Defaults with the output (and status file) under tmp_path, plus per-area overrides."""
    data: dict = {"output": {"dir": str(tmp_path / "out")}, "thermal": {"enabled": False}}
    for area, values in areas.items():
        data.setdefault(area, {}).update(values)
    return Config.model_validate(data)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A factory of small real filesystems (tmpfs, so ENOSPC and inode exhaustion come from the kernel);
    unmounted after the test. Skips where mounting is not allowed (not root, or in a container without it)."""
    import subprocess
    import uuid

    mounts: list[Path] = []

    def mount(size: str = "1m", inodes: int | None = None) -> Path:
        path = tmp_path / f"fs{len(mounts)}"
        path.mkdir()
        options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, f"deblurd-test-{uuid.uuid4().hex[:6]}",
                               str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): run the suite as root")
        mounts.append(path)
        return path

    yield mount
    for path in reversed(mounts):
        subprocess.run(["umount", "-l", str(path)], check=False)


class Daemon:
    """`deblurd run` as a real subprocess with a config written from per-area overrides (replay at 160x120,
    no storage policy, a 0.5 s status interval unless told), so fault tests exercise the real process."""

    defaults = {"camera": {"source": "replay", "width": 160, "height": 120, "fps": 30.0},
                "models": {"threads": 1}, "output": {"max_per_minute": 0, "min_free_mb": 0},
                "thermal": {"enabled": False}, "service": {"status_interval_s": 0.5}}

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list = []

    def config(self, out: Path, **areas: dict) -> Path:
        data = {area: dict(values) for area, values in self.defaults.items()}
        data["output"]["dir"] = out
        for area, values in areas.items():
            data.setdefault(area, {}).update(values)
        lines = []
        for area, values in data.items():
            lines.append(f"[{area}]")
            lines += [f"{key} = " + (str(value).lower() if isinstance(value, bool)
                                     else repr(value) if isinstance(value, (int, float)) else repr(str(value)))
                      for key, value in values.items()]
        path = self.tmp_path / f"deblurd-{len(self.procs)}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, out: Path, *args: str, env: dict | None = None, **areas: dict):
        import os
        import subprocess
        import sys

        proc = subprocess.Popen([sys.executable, "-m", "deblurd", "run", "--config", str(self.config(out, **areas)),
                                 *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})})
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def daemon(tmp_path: Path, photo_pack_dir: Path):
    runner = Daemon(tmp_path)
    yield runner
    runner.close()


def wait_until(predicate, proc=None, timeout: float = 60.0, what: str = "the daemon") -> None:
    """Poll until `predicate()`; the timeout only catches a hang (it is not a speed assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, f"{what}: still waiting after {timeout} s (a hang?)"
        time.sleep(0.05)


SEVERITY = {label: Severity({"sharp": 0.1, "semi": 0.1, "heavy": 0.1} | {label: 0.8}, "photo/x@1",
                            restored={} if label == "sharp" else {label: 0.8})
            for label in ("sharp", "semi", "heavy")}


def make_result(seq: int, label: str = "semi", kind: str = "continuous", when: float | None = None, size=(48, 64),
                noisy: bool = False) -> Result:
    """A result for the store: a patterned (or noisy) frame, its "restoration" the negative unless sharp."""
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    pixels = np.stack([(xx * 3 + seq * 20) % 256, (yy * 2) % 256, (xx + yy + seq) % 256], -1).astype(np.uint8)
    if noisy:
        pixels = np.random.default_rng(seq).integers(0, 256, pixels.shape, dtype=np.uint8)
    frame = Frame(pixels, seq, when or time.time(), kind, {"lens_position": 1.5, "source": "test"})  # type: ignore[arg-type]
    restored = None if label == "sharp" else 255 - pixels
    return Result(frame, SEVERITY[label], restored, {"classify_s": 0.01}, {"temp_c": 55.0})


def assert_consistent(out: Path) -> list[dict]:
    """Every image decodes and every index line points at files that exist."""
    for image in list(out.rglob("*.jpg")) + list(out.rglob("*.png")):
        assert cv2.imread(str(image)) is not None, f"{image} does not decode"
    entries = read_index(out)
    for entry in entries:
        for rel in entry["files"].values():
            assert (out / rel).is_file(), f"index points at missing {rel}"
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    return entries


@pytest.fixture(scope="session")
def radius_pack_dir(tmp_path_factory) -> Path:
    """A tiny radius pack made by the real tools: a radius mapper and non-blind semi / heavy generators trained a
    few steps on the realistic synthesis (tools.train.cpu), exported to TFLite with a manifest (tools.train.export)."""
    from tools.train import cpu, export

    runs = tmp_path_factory.mktemp("radius-runs")
    chosen = {}
    for role, arch in (("classifier", "mapper-radius"), ("semi", "nonblind"), ("heavy", "nonblind-heavy")):
        args = cpu.parse_args(["--pack", "photo", "--role", role, "--arch", arch, "--synthesis", "realistic",
                               "--steps", "2", "--batch", "2", "--patch", "64", "--val-size", "2", "--log-every", "1",
                               "--ckpt-every", "2", "--threads", "1", "--runs", str(runs)])
        chosen[role] = cpu.train(args)
    return export.export_pack("photo", runs, runs / "models" / "photo", chosen, calibration=4, checked=2)


def write_probe_pack(folder: Path, gain: float = 0.25, confidence: float = 1.0, semi_max: float | None = None) -> Path:
    """A radius pack whose models say what they see, converted by tools.train.export: the mapper's radius is
    8 * relu(1 - 2 * the cell's mean luminance) px (dark cells blurred, bright ones sharp) with a fixed confidence,
    and each generator returns luma + gain * its radius channel (radius / radius_scale)."""
    import datetime as dt

    import keras

    from deblurd.restore.manifest import Manifest, sha256_of
    from deblurd.restore.packs import PACKS
    from tools.train import export

    inp = keras.Input((None, None, 1))
    mean = keras.layers.AveragePooling2D(8)(inp)
    radius = keras.layers.Conv2D(1, 1, activation="relu")(mean)
    sure = keras.layers.Conv2D(1, 1, activation="sigmoid")(mean)
    mapper = keras.Model(inp, keras.layers.Concatenate()([radius, sure]))
    logit = float(np.log(confidence / (1 - confidence))) if confidence < 1 else 30.0
    mapper.layers[2].set_weights([np.full((1, 1, 1, 1), -2.0, np.float32), np.ones(1, np.float32)])
    mapper.layers[3].set_weights([np.zeros((1, 1, 1, 1), np.float32), np.full(1, logit, np.float32)])
    g_in = keras.Input((None, None, 2))
    generator = keras.Model(g_in, keras.layers.Conv2D(1, 1)(g_in))
    generator.layers[1].set_weights([np.array([1.0, gain], np.float32).reshape(1, 1, 2, 1), np.zeros(1, np.float32)])
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for role, net in (("classifier", mapper), ("semi", generator), ("heavy", generator)):
        data = export.convert(export.fixed_shape(net, 256), None)
        for name in (f"{role}.tflite", f"{role}.float.tflite"):
            (folder / name).write_bytes(data)
        digest = sha256_of(folder / f"{role}.tflite")
        entries[role] = {"file": f"{role}.tflite", "sha256": digest, "float_file": f"{role}.float.tflite",
                         "float_sha256": digest, "input_shape": [1, 256, 256, 1 if role == "classifier" else 2],
                         "overlap": 64 if role == "classifier" else 32, "architecture": "probe", "recipe": "none",
                         "params": 0, "macs_per_pixel": 0.0,
                         **({"output": "radius"} if role == "classifier" else {"inputs": ["luma", "radius"]})}
    blur = PACKS["photo"].blur if semi_max is None else PACKS["photo"].blur.model_copy(update={"semi_max": semi_max})
    manifest = Manifest.model_validate({"name": "photo", "version": "0-probe", "working_width": 640, "blur": blur,
                                        "created": dt.datetime.now(dt.UTC).isoformat(), "models": entries})
    (folder / "manifest.json").write_text(manifest.model_dump_json(indent=1))
    return folder


@pytest.fixture(scope="session")
def probe_pack_dir(tmp_path_factory) -> Path:
    return write_probe_pack(tmp_path_factory.mktemp("probe") / "photo")


def two_halves() -> np.ndarray:
    """A textured sample whose left half is bright (the probe mapper: sharp) and right half dark (heavy)."""
    rgb = read_sample("06-sharp.jpg").astype(np.float32)
    out = rgb * 0.3
    half = rgb.shape[1] // 2
    out[:, :half] += 0.65 * 255
    return np.round(out).astype(np.uint8)
