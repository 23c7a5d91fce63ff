"""SIGKILL a writer process mid-write, again and again: the output must only ever hold whole files and a valid index."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np

from deblurd.config import OutputConfig
from deblurd.frames import Frame, Severity
from deblurd.store import Result, ResultStore
from test_store import assert_consistent

def _write_forever(out: Path, fmt: str, seed: int, ready: int) -> None:
    """The writer process: saves results as fast as it can until it is killed."""
    store = ResultStore(OutputConfig(dir=out, image_format=fmt, max_results=25, min_free_mb=10))
    store.open()
    rng = np.random.default_rng(seed)
    os.write(ready, b"r")
    for seq in range(1, 10_000):
        pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        kind = "still" if seq % 5 == 0 else "continuous"
        label = "sharp" if seq % 3 == 0 else "heavy"
        store.save(Result(Frame(pixels, seq, time.time(), kind), Severity(label, {label: 1.0}, "crash-test"),
                          None if label == "sharp" else 255 - pixels))


def _spawn_writer(out: Path, fmt: str, seed: int) -> int:
    """Fork (fast: the parent has already imported everything) and return once the child is writing."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _write_forever(out, fmt, seed, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 1) == b"r"
    os.close(read_end)
    return pid


def _check_after_crash(out: Path) -> int:
    """What a reader sees right after a kill: whole images, and index lines that point at existing files."""
    for image in [*out.rglob("*.jpg"), *out.rglob("*.png")]:
        assert cv2.imread(str(image)) is not None, f"{image} is not a whole image"
    lines = (out / "index.jsonl").read_text().splitlines() if (out / "index.jsonl").exists() else []
    for line in lines:
        for rel in json.loads(line)["files"].values():
            assert (out / rel).is_file(), f"index line points at missing {rel}"
            if rel.endswith(".json"):
                json.loads((out / rel).read_text())
    return len(lines)


def test_sigkill_mid_write_never_leaves_partial_files(tmp_path):
    out = tmp_path / "out"
    rng = np.random.default_rng(0)
    counts = []
    for attempt in range(20):
        fmt = "png" if attempt % 2 else "jpg"
        pid = _spawn_writer(out, fmt, attempt)
        time.sleep(float(rng.uniform(0.01, 0.2)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        counts.append(_check_after_crash(out))
    assert max(counts) > 0
    store = ResultStore(OutputConfig(dir=out, min_free_mb=10))
    store.open()
    entries = assert_consistent(out)
    assert len({e["id"] for e in entries}) == len(entries)
