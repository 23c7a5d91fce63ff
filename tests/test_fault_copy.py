"""The README's copy recipe (deploy/copy-results.sh, a real rsync) against a running daemon that keeps writing and
pruning: every copy's index names only files the copy holds, every image is whole, no temporary file is copied,
and repeated copies into one folder stay that way."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import cv2
import pytest

from conftest import REPO, wait_until
from deblurd.config import OutputConfig
from deblurd.output.store import ResultStore
from conftest import make_result

ROUNDS = 12
SCRIPT = REPO / "deploy" / "copy-results.sh"


def _check_copy(copy: Path) -> int:
    hidden = list(copy.rglob(".*"))
    assert not hidden, f"hidden (temporary) files in the copy: {hidden[:3]}"
    lines = (copy / "index.jsonl").read_text().splitlines()
    for line in lines:
        for rel in json.loads(line)["files"].values():
            assert (copy / rel).is_file(), f"the copied index names {rel}, which the copy lacks"
    for image in copy.rglob("*.jpg"):
        assert cv2.imread(str(image)) is not None, f"{image} is not a whole image"
    return len(lines)


def test_copy_recipe_is_consistent_against_a_running_daemon(tmp_path, daemon):
    if subprocess.run(["sh", "-c", "command -v rsync"], capture_output=True).returncode:
        pytest.skip("rsync is not installed (apt-get install rsync)")
    out = tmp_path / "out"
    old = ResultStore(OutputConfig(dir=out, min_free_mb=0))
    old.open()
    for seq in range(1, 121):  # yesterday's results: old enough for retention to prune while we copy
        old.save(make_result(seq, when=time.time() - 86400 + seq))
    proc = daemon.start(out, output={"max_results": 100}, camera={"fps": 30.0})
    index = out / "index.jsonl"
    wait_until(lambda: json.loads(index.read_text().splitlines()[0])["id"] > 1, proc, what="the daemon pruning")
    same = tmp_path / "copy-again"
    sizes, pruned = [], 0
    for round_ in range(ROUNDS):
        before = index.read_text().splitlines()[0]
        for dest in (tmp_path / f"copy-{round_}", same):
            done = subprocess.run(["sh", str(SCRIPT), f"{out}/", str(dest)], capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, done.stderr
            sizes.append(_check_copy(dest))
        pruned += index.read_text().splitlines()[0] != before
        assert proc.poll() is None
    print(f"\ncopy recipe: {2 * ROUNDS} copies of {min(sizes)}-{max(sizes)} results while the daemon wrote and "
          f"pruned ({pruned} of {ROUNDS} rounds saw pruning): 0 inconsistent")
    assert pruned > 0
