"""Stopping, through real `deblurd run` processes: a fatal capture error ends the daemon with a clear message and a
non-zero exit; SIGTERM ends it even while the store is blocked on a write; SIGHUP is a clean stop; the final status
says "stopped" and why; `deblurd status` survives a reader that closes the pipe. Times are printed, not asserted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, assert_consistent, wait_until

from deblurd.daemon.pipeline import STOP_GRACE_S
from deblurd.errors import ExitCode


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def _status(out: Path) -> dict:
    return json.loads((out / "status.json").read_text())


def test_a_fatal_capture_error_ends_the_daemon(tmp_path, daemon):
    replay = tmp_path / "replay"
    replay.mkdir()
    for name in ("a.jpg", "b.png"):
        (replay / name).write_bytes(b"not an image at all")
    out = tmp_path / "out"
    started = time.monotonic()
    proc = daemon.start(out, camera={"replay_path": replay})
    _, stderr = proc.communicate(timeout=120)  # before the fix: a hang that only SIGKILL ended
    print(f"\nfatal capture error: exit {proc.returncode} {time.monotonic() - started:.1f} s after start")
    assert proc.returncode == ExitCode.UNAVAILABLE, stderr
    assert f"deblurd: camera failed: replay folder {replay} has no more readable images" in stderr
    assert "fatal error in the capture thread" in stderr and "Traceback" not in stderr
    state = _status(out)
    assert state["state"] == "stopped" and "fatal error in the capture thread" in state["exit_reason"]


def _store_thread_blocked(pid: int) -> bool:
    """A thread of `pid` waits in the kernel for a FIFO reader: the store is stuck opening the index."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "wchan").read_text().strip() == "wait_for_partner":
                return True
        except OSError:
            continue
    return False


def test_sigterm_ends_the_daemon_while_the_store_is_blocked(tmp_path, daemon):
    out = tmp_path / "out"
    proc = daemon.start(out)
    wait_until(lambda: _lines(out / "index.jsonl") >= 3, proc)
    (out / "index.jsonl").rename(tmp_path / "index.jsonl")
    os.mkfifo(out / "index.jsonl")  # the next append blocks in open() until a reader comes: a disk that hangs
    wait_until(lambda: _store_thread_blocked(proc.pid), proc, what="the store thread blocking")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    print(f"\nSIGTERM with the store blocked: exit {proc.returncode} after {took:.1f} s "
          f"(grace {STOP_GRACE_S:.0f} s)")
    assert proc.returncode == 73, stderr
    assert "the store thread was still writing" in stderr and "the disk is stalled" in stderr
    state = _status(out)
    assert state["state"] == "stopped" and state["exit_reason"] == "SIGTERM"
    assert "still writing" in state["last_error"]["message"]


def test_sighup_is_a_clean_stop_with_a_final_status(tmp_path, daemon):
    out = tmp_path / "out"
    proc = daemon.start(out)
    wait_until(lambda: _lines(out / "index.jsonl") >= 2, proc)
    proc.send_signal(signal.SIGHUP)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "stopped (SIGHUP) after" in stderr
    state = _status(out)
    entries = assert_consistent(out)
    assert state["state"] == "stopped" and state["exit_reason"] == "SIGHUP" and state["frames_out"] == len(entries)
    shown = subprocess.run([sys.executable, "-m", "deblurd", "status", "--output", str(out)], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    first = shown.stdout.splitlines()[0]
    assert shown.returncode == 3 and first.startswith("deblurd stopped (SIGHUP)") and "STALE" not in first


def test_status_to_a_closed_pipe_is_not_an_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "status.json").write_text(json.dumps({"state": "running", "updated": time.time(), "interval_s": 5,
                                                 "readings": {f"sensor_{i}": i for i in range(5000)}}))
    for args in ([], ["--json"]):
        proc = subprocess.Popen([sys.executable, "-m", "deblurd", "status", "--output", str(out), *args], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc.stdout.close()  # the reader goes away before a byte is written, as `| head -1` can
        stderr = proc.stderr.read()
        assert proc.wait(timeout=60) == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
