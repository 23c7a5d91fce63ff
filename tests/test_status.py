"""The status file the daemon replaces and `deblurd status` shows."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import REPO

from deblurd.atomic import AtomicWriter
from deblurd.commands.status import format_status
from deblurd.optics.lens_profile import PROFILE_NAME, FitQuality, LensCalibration, save_profile
from deblurd.output.state_file import read_status, write_status


def test_status_round_trip_and_text(tmp_path):
    state = {"pid": 7, "updated": 1000.0, "uptime_s": 42, "interval_s": 5, "mode": "normal", "source": "replay:x",
             "models": "photo v1", "fps": 4.5, "frames_in": 10, "frames_out": 9,
             "routes": {"semi": {"in": 3, "out": 3, "dropped": 0}}, "dropped": {"queue_full": 1},
             "last_result": {"id": 9, "severity": "semi"}, "last_error": None, "readings": {"temp_c": 61.5},
             "disk": {"dir": "/out", "free_mb": 900.0, "full": None}}
    write_status(tmp_path / "s" / "status.json", state, AtomicWriter())
    assert read_status(tmp_path / "s" / "status.json") == state
    text = format_status(state, now=1002.0)
    assert "fps 4.50" in text and "semi" in text and "queue full 1" in text and "900 MB free" in text
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


# what a person and a script see --------------------------------------------------------------------------------

PC_READINGS = {"temp_c": None, "fan_rpm": None, "fan_pwm": None, "fan_state": None, "throttled_raw": None,
               **{f"flag_{i}": None for i in range(8)}}


def status(folder, *args, config=None):
    extra = ["--config", str(config)] if config else []
    return subprocess.run([sys.executable, "-m", "deblurd", "status", "--output", str(folder), *extra, *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def write_state(folder, **fields):
    state = {"state": "running", "pid": 7, "updated": time.time(), "uptime_s": 3, "interval_s": 5,
             "mode": "normal", "source": "replay", "models": "photo", "fps": 2.0, "frames_in": 4, "frames_out": 4,
             "readings": PC_READINGS, "disk": {"dir": str(folder), "free_mb": 100.0, "full": None}, **fields}
    write_status(folder / "status.json", state, AtomicWriter())
    return state


def test_sensors_without_values_say_not_available_once_instead_of_nulls():
    text = format_status({"updated": 0, "readings": PC_READINGS}, now=1)
    (line,) = [line for line in text.splitlines() if line.startswith("sensors")]
    assert line.startswith("sensors: not available") and "null" not in text and "flag" not in text
    line = [line for line in format_status({"updated": 0, "readings": {
        "temp_c": 61.53, "fan_rpm": 3100, "throttled_raw": "0x50000", "under_voltage_now": False,
        "throttled_since_boot": True, "fan_pwm": None}}, now=1).splitlines() if line.startswith("sensors")]
    assert line == ["sensors: 61.5 °C, fan 3100 rpm, throttled 0x50000, throttled since boot"]


def test_last_result_and_error_read_as_sentences():
    text = format_status({"updated": 100, "last_result": {
        "id": 9, "time": 90, "kind": "still", "severity": "semi", "passthrough": False,
        "files": {"input": "d/1-input.jpg", "restored": "d/1-restored.jpg"}},
        "last_error": {"time": 40, "message": "disk full"}, "dropped": {"queue_full": 2}}, now=100)
    assert "last result: #9 still semi, restored, 10 s ago: d/1-restored.jpg" in text
    assert "last error, 60 s ago: disk full" in text and "dropped: queue full 2" in text and "{" not in text


@pytest.mark.parametrize("fields,code,shown", [
    ({}, 0, "deblurd normal, pid 7"),
    ({"updated": time.time() - 3600}, 1, "STALE"),
    ({"state": "stopped", "exit_reason": "SIGTERM"}, 3, "deblurd stopped (SIGTERM)"),
])
def test_the_exit_status_says_running_stale_or_stopped(tmp_path, fields, code, shown):
    write_state(tmp_path, **fields)
    done = status(tmp_path)
    assert done.returncode == code and shown in done.stdout, done.stdout + done.stderr
    machine = status(tmp_path, "--json")
    assert machine.returncode == code and json.loads(machine.stdout)["pid"] == 7
    assert status(tmp_path / "never").returncode == 4


def test_the_help_documents_every_exit_status():
    done = subprocess.run([sys.executable, "-m", "deblurd", "status", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    codes = done.stdout.split("exit status:")[1]
    for code in ("0", "1", "3", "4"):
        assert f"\n  {code}  " in codes


def test_the_expected_blur_is_for_the_configured_subject_plane(tmp_path):
    profile = LensCalibration(lens_id="test", created="2026-01-01", source="sim", pairs="x",
                              radius_per_dioptre=0.6 * 4608 / 640, field_gain=0.0, rim=0.0, soften_px=0.0,
                              chroma=(0.0, 0.0, 0.0), regions=[], measurements=[],
                              fit=FitQuality(points=1, rms_relative_error=0, median_relative_error=0,
                                             max_relative_error=0, r2=1))
    save_profile(tmp_path / PROFILE_NAME, profile)
    write_state(tmp_path, lens_position=3.0)
    infinity = status(tmp_path)
    assert "radius 1.80 px at 640 px for a background at infinity (set lens.subject_dioptres" in infinity.stdout
    config = tmp_path / "deblurd.toml"
    config.write_text("[lens]\nmode = \"manual\"\nsubject_dioptres = 2.0\n")
    plane = status(tmp_path, config=config)
    assert "radius 0.60 px at 640 px for the subject plane at 2 dioptres (0.5 m)" in plane.stdout, plane.stdout
