"""The status file the daemon replaces and `deblurd status` shows."""

from __future__ import annotations

from deblurd.atomic import AtomicWriter
from deblurd.output.state_file import read_status, write_status
from deblurd.commands.status import format_status


def test_status_round_trip_and_text(tmp_path):
    state = {"pid": 7, "updated": 1000.0, "uptime_s": 42, "interval_s": 5, "mode": "normal", "source": "replay:x",
             "models": "photo v1", "fps": 4.5, "frames_in": 10, "frames_out": 9,
             "routes": {"semi": {"in": 3, "out": 3, "dropped": 0}}, "dropped": {"queue_full": 1},
             "last_result": {"id": 9, "severity": "semi"}, "last_error": None, "readings": {"temp_c": 61.5},
             "disk": {"dir": "/out", "free_mb": 900.0, "full": None}}
    write_status(tmp_path / "s" / "status.json", state, AtomicWriter())
    assert read_status(tmp_path / "s" / "status.json") == state
    text = format_status(state, now=1002.0)
    assert "fps 4.50" in text and "semi" in text and "queue_full" in text and "900 MB free" in text
    assert "STALE" not in text
    assert "STALE" in format_status(state, now=1100.0)


def test_status_names_the_lock_holder_and_a_folder_that_has_gone(tmp_path):
    from deblurd.commands.status import lock_line
    from deblurd.output.lock import OutputLock, holder

    state = {"pid": 7, "updated": 1000.0, "disk": {"dir": "/gone", "free_mb": None, "full": None}}
    assert "free space unknown" in format_status(state, now=1001.0)
    assert "free (no deblurd writes" in lock_line(tmp_path, holder(tmp_path))
    lock = OutputLock(tmp_path)
    lock.acquire()
    try:
        import os

        assert f"held by pid {os.getpid()}" in lock_line(tmp_path, holder(tmp_path))
    finally:
        lock.release()
