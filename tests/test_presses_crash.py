"""No accepted press is lost to a crash: `deblurd run` (a real process, replay source) is SIGKILLed at random
times while presses arrive (press records plus SIGUSR1, as `deblurd still` sends them, and now and then the real
`deblurd still` command), and restarted after each kill; at the end every acknowledged press has a stored still.

DEBLURD_PRESS_KILLS=N runs a longer soak (default 12 kills, about a minute and a half here)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conftest import REPO, assert_consistent, wait_until

from deblurd.daemon.presses import PRESS_SUFFIX, record_press
from deblurd.output.layout import SPOOL_DIR
from deblurd.output.lock import holder
from deblurd.output.store import read_index

KILLS = int(os.environ.get("DEBLURD_PRESS_KILLS", "12"))
CAMERA = {"fps": 2.0}


def _press(out: Path, pid: int, rng: random.Random) -> str:
    """One press as `deblurd still` makes it: every fourth through the real command, the rest in-process (the
    same record_press and SIGUSR1, without a Python start-up each). Returns the acknowledged press's name."""
    if rng.random() < 0.25:
        done = subprocess.run([sys.executable, "-m", "deblurd", "still", "--output", str(out)], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.rsplit("press ", 1)[1].strip()
    press = record_press(out, "test")
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        pass
    return press.name


def _stills_by_press(out: Path) -> Counter:
    counts: Counter = Counter()
    for entry in read_index(out):
        if entry["kind"] == "still":
            sidecar = json.loads((out / entry["files"]["sidecar"]).read_text())
            counts[sidecar["camera"].get("press")] += 1
    return counts


def _spool_empty(out: Path) -> bool:
    spool = out / SPOOL_DIR
    return not [p for p in spool.iterdir() if p.suffix in (".jpg", ".json", PRESS_SUFFIX)] if spool.is_dir() else True


def _running(out: Path, pid: int) -> bool:
    try:
        return json.loads((out / "status.json").read_text()).get("pid") == pid
    except (OSError, ValueError):
        return False


def test_random_kills_lose_no_acknowledged_press(tmp_path, daemon):
    out = tmp_path / "out"
    rng = random.Random(19)
    pressed: list[str] = []
    logs: list[str] = []
    for life in range(KILLS):
        proc = daemon.start(out, camera=CAMERA)
        wait_until(lambda pid=proc.pid: holder(out) == pid, proc, what=f"daemon life {life}")
        for _ in range(rng.randint(3, 5)):
            pressed.append(_press(out, proc.pid, rng))
            time.sleep(rng.uniform(0.0, 0.4))
        time.sleep(rng.uniform(0.0, 1.5))  # lands before capture, while spooling, restoring or storing
        proc.kill()
        logs.append(proc.communicate()[1])
    proc = daemon.start(out, camera=CAMERA)
    wait_until(lambda: _running(out, proc.pid), proc, what="the last start")  # its SIGTERM handler is in place
    wait_until(lambda: _spool_empty(out) and set(pressed) <= set(_stills_by_press(out)), proc, timeout=180,
               what="the last start, storing every press")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    starts = {what: sum(what in log for log in [*logs[1:], err]) for what in
              ("restored first", "stopped before their still", "had no metadata")}
    stored = _stills_by_press(out)
    lost = [name for name in pressed if stored[name] == 0]
    duplicates = sum(stored[name] - 1 for name in pressed if stored[name] > 1)
    print(f"\n{KILLS} SIGKILLs: {len(pressed) - len(lost)} of {len(pressed)} acknowledged presses stored, "
          f"{duplicates} stored twice, {len(lost)} lost; starts that found spooled stills / presses not yet "
          f"taken / a JPEG without its JSON: {' / '.join(map(str, starts.values()))}")
    assert len(pressed) >= min(40, 3 * KILLS) and not lost
    assert set(stored) <= set(pressed), "a still no press asked for"
    assert_consistent(out)
