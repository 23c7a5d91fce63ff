"""`deblurd still` as a user runs it: real processes, a real daemon on the replay source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO, wait_until

from deblurd.output.layout import SPOOL_DIR
from deblurd.output.lock import holder
from deblurd.output.store import read_index


def _still(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deblurd", "still", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_without_a_daemon_it_says_so_exits_69_and_requests_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = _still("--output", str(out))
    assert done.returncode == 69 and done.stdout == ""
    assert f"no deblurd is running on {out}, so nothing was requested" in done.stderr
    assert "deblurd run --output" in done.stderr and not (out / SPOOL_DIR).exists()


def test_it_takes_a_still_from_the_running_daemon_like_a_press(tmp_path: Path, daemon):
    out = tmp_path / "out"
    proc = daemon.start(out)
    wait_until(lambda: holder(out) == proc.pid, proc)
    done = _still("--output", str(out), "--wait", "90")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"still requested from deblurd (pid {proc.pid})" in lines[0] and "index.html#kind=still" in lines[0]
    press = lines[0].rsplit("press ", 1)[1]
    files = [Path(line) for line in lines[1:]]
    assert files and all(path.is_file() and path.parent.parent == out for path in files)
    stills = [e for e in read_index(out) if e["kind"] == "still"]
    assert len(stills) == 1 and out / stills[0]["files"]["input"] in files
    sidecar = json.loads((out / stills[0]["files"]["sidecar"]).read_text())
    assert sidecar["camera"]["press"] == press and sidecar["camera"]["press_via"] == "command"
    assert proc.poll() is None, "the daemon runs on"
    assert not list((out / SPOOL_DIR).glob("*")), "the request is released once its still is stored"
