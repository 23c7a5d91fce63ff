"""SIGKILL a writer again and again on one output folder, restarting it at once (same second, as a service
restart does): images are never torn, no file is ever overwritten, every index line matches its files and
sidecar, and after a restart no unindexed result or temp file is left."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
from conftest import assert_consistent

from deblurd.config import OutputConfig
from deblurd.frames import Frame, Severity
from deblurd.output.store import Result, ResultStore

KILLS = 25
SIZE = (120, 160)


def _pixels(token: str) -> np.ndarray:
    """The frame a token stands for, so a reader can tell which frame a file really holds."""
    seed = int.from_bytes(token.encode(), "little") % 2**32
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, SIZE[::-1], interpolation=cv2.INTER_LINEAR)  # smooth: JPEG keeps it within a few levels


def _write_forever(out: Path, fmt: str, life: int, ready: int) -> None:
    """The writer process: saves results as fast as it can until it is killed."""
    store = ResultStore(OutputConfig(dir=out, image_format=fmt, min_free_mb=0, max_per_minute=0))
    store.open()
    os.write(ready, b"r")
    for seq in range(1, 10_000):
        token = f"{life}:{seq}"
        pixels = _pixels(token)
        kind = "still" if seq % 5 == 0 else "continuous"
        label = "sharp" if seq % 3 == 0 else "heavy"
        store.save(Result(Frame(pixels, seq, time.time(), kind, {"source": token}),
                          Severity({label: 1.0}, "crash-test", restored={} if label == "sharp" else {label: 1.0}),
                          None if label == "sharp" else 255 - pixels))


def _spawn_writer(out: Path, fmt: str, life: int) -> int:
    """Fork (fast: the parent has already imported everything) and return once the child is writing."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _write_forever(out, fmt, life, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 1) == b"r"
    os.close(read_end)
    return pid


def _check(out: Path, seen: dict[str, bytes]) -> dict:
    """Every index line's files exist and hold the frame its sidecar names; files seen before are unchanged."""
    entries = {}
    for line in (out / "index.jsonl").read_text().splitlines() if (out / "index.jsonl").exists() else []:
        entry = json.loads(line)
        assert entry["id"] not in entries, f"id {entry['id']} indexed twice"
        entries[entry["id"]] = entry
        sidecar = json.loads((out / entry["files"]["sidecar"]).read_text())
        assert {k: sidecar[k] for k in entry} == entry, f"sidecar of {entry['id']} disagrees with its index line"
        expected = _pixels(sidecar["source"])
        for kind, rel in entry["files"].items():
            if kind == "sidecar":
                continue
            image = cv2.imread(str(out / rel))
            assert image is not None, f"{rel} is not a whole image"
            want = expected if kind == "input" else 255 - expected
            diff = np.abs(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(int) - want).mean()
            assert diff < (1 if rel.endswith(".png") else 8), f"{rel} holds another frame (mean diff {diff:.0f})"
        for rel in entry["files"].values():
            data = (out / rel).read_bytes()
            assert seen.setdefault(rel, data) == data, f"{rel} was overwritten"
    return entries


def test_sigkill_loop_never_overwrites_or_mismatches(tmp_path):
    out = tmp_path / "out"
    rng = np.random.default_rng(0)
    seen: dict[str, bytes] = {}
    indexed: dict[int, dict] = {}
    for life in range(KILLS):
        pid = _spawn_writer(out, "png" if life % 2 else "jpg", life)
        time.sleep(float(rng.uniform(0.01, 0.25)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        entries = _check(out, seen)
        assert indexed.keys() <= entries.keys(), "an indexed result disappeared"
        indexed = entries
    store = ResultStore(OutputConfig(dir=out, min_free_mb=0))
    store.open()
    entries = _check(out, seen)
    on_disk = {str(p.relative_to(out)) for p in out.glob("*/*")}
    named = {rel for e in entries.values() for rel in e["files"].values()}
    assert on_disk == named, f"unindexed files after restart: {sorted(on_disk - named)[:5]}"
    assert_consistent(out)
    print(f"\n{KILLS} SIGKILLs: {len(entries)} results, {len(seen)} files, 0 overwritten or mismatched")
