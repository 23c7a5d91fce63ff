"""show the running daemon's counters, fps, last result, last error and free disk space

`deblurd status` reads the state file (state_file.py) that the daemon replaces atomically every few seconds, and
asks the output folder's lock (lock.py) which process, if any, is writing there now. Its exit status says what it
found (STATUS_CODES, the LSB init-script codes that `service NAME status` scripts already understand), so that a
script or a monitor can ask `deblurd status >/dev/null` without parsing the text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from deblurd.config import Config, load_config
from deblurd.optics.lens_profile import LensProfileError, load_profile, profile_path
from deblurd.output.layout import LOCK_NAME
from deblurd.output.lock import holder
from deblurd.output.state_file import STOPPED, is_stale, read_status

RUNNING_OK, STALE, STOPPED_CODE, UNKNOWN = 0, 1, 3, 4
STATUS_CODES = {RUNNING_OK: "the daemon is running and its status is current",
                STALE: "the status says running but has not been updated (STALE: the daemon died or hangs)",
                STOPPED_CODE: "the daemon has stopped (its last status says why)",
                UNKNOWN: "no status file, or one that cannot be read (the daemon has not run with this config)"}
EXAMPLES = """examples:
  deblurd status                         what the daemon is doing: counters, fps, sensors, disk, lock, lens
  deblurd status --output /tmp/out       the daemon started with `deblurd run --output /tmp/out`
  deblurd status --json | jq .fps        the raw status file, for scripts
  deblurd status >/dev/null || echo down    the exit status alone

exit status:
""" + "\n".join(f"  {code}  {meaning}" for code, meaning in STATUS_CODES.items()) + "\n"


def _headline(state: dict[str, Any], now: float) -> str:
    age = now - state.get("updated", now)
    if state.get("state") == STOPPED:
        return (f"deblurd stopped ({state.get('exit_reason') or 'no reason recorded'}) {age:.0f} s ago, "
                f"pid {state.get('pid')}, ran {state.get('uptime_s', 0):.0f} s")
    return (f"deblurd {state.get('mode', '?')}, pid {state.get('pid')}, up {state.get('uptime_s', 0):.0f} s, "
            f"updated {age:.0f} s ago" + (" (STALE: is the daemon running?)" if is_stale(state, now) else ""))


READING_FORMATS = {"temp_c": "{:.1f} °C", "fan_rpm": "fan {} rpm", "fan_pwm": "fan pwm {}/255",
                   "fan_state": "cooling level {}", "throttled_raw": "throttled {}"}
"""How the thermal sensor's readings (daemon/thermal.py) read for a person; any other key is shown by name."""


def sensors_line(readings: dict[str, Any]) -> str:
    """The sensor readings that hold a value (a flag only when it is set); "not available" once on a machine
    without the Pi's temperature, fan and throttle sensors, rather than a row of nulls."""
    shown = [READING_FORMATS[key].format(value) if key in READING_FORMATS
             else key.replace("_", " ") + ("" if value is True else f" {value}")
             for key, value in readings.items() if value is not None and value is not False]
    if not shown:
        return "sensors: not available (temperature, fan and throttling are read on a Raspberry Pi)"
    return "sensors: " + ", ".join(shown)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in counts.items())


def _result_line(result: dict[str, Any], now: float) -> str:
    what = "passed through" if result.get("passthrough") else "restored"
    files = result.get("files", {})
    shown = files.get("restored") or files.get("input") or ""
    label = " ".join(str(part) for part in (result.get("kind"), result.get("severity")) if part)
    return (f"last result: #{result.get('id')} {label}, {what}, {now - result.get('time', now):.0f} s ago"
            + (f": {shown}" if shown else ""))


def format_status(state: dict[str, Any], now: float) -> str:
    """The state as a few human lines."""
    lines = [_headline(state, now),
             f"source {state.get('source')}, models {state.get('models')}",
             f"fps {state.get('fps', 0):.2f}, frames in {state.get('frames_in', 0)}, out {state.get('frames_out', 0)}"]
    for route, counts in sorted(state.get("routes", {}).items()):
        lines.append(f"  {route:<8} in {counts.get('in', 0):>7}  out {counts.get('out', 0):>7}  "
                     f"dropped {counts.get('dropped', 0):>5}")
    for key in ("dropped", "not_stored"):
        if state.get(key):
            lines.append(f"{key.replace('_', ' ')}: {_counts(state[key])}")
    if "readings" in state:
        lines.append(sensors_line(state["readings"] or {}))
    if state.get("last_result"):
        lines.append(_result_line(state["last_result"], now))
    if state.get("last_error"):
        error = state["last_error"]
        lines.append(f"last error, {now - error.get('time', now):.0f} s ago: {error.get('message')}")
    disk = state.get("disk", {})
    free = disk.get("free_mb", 0)
    lines.append(f"output {disk.get('dir')}: " + (f"{free:.0f} MB free" if free is not None else "free space unknown")
                 + (f" (floor {disk['min_free_mb']} MB)" if "min_free_mb" in disk else "")
                 + (f", NOT WRITING: {disk['full']}" if disk.get("full") else ""))
    if disk.get("removed_for_space"):
        lines.append(f"removed for space this run: {disk['removed_for_space']} result(s), last "
                     f"{json.dumps(disk.get('last_space_removal'))}")
    return "\n".join(lines)


def exit_status(state: dict[str, Any], now: float) -> int:
    """STATUS_CODES's code for a state read at `now`."""
    if state.get("state") == STOPPED:
        return STOPPED_CODE
    return STALE if is_stale(state, now) else RUNNING_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config file (default /etc/deblurd/deblurd.toml)")
    parser.add_argument("--output", type=Path, metavar="DIR", help="the --output folder the daemon was started with")
    parser.add_argument("--json", action="store_true", help="print the raw state JSON (the exit status is the same)")


def _print(text: str) -> None:
    """Print, and treat a reader that stopped reading (`deblurd status | head -1`) as done, not as an error."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit must not fail again


def lock_line(folder: Path, pid: int | None) -> str:
    """Who holds the output folder's lock: the daemon writing there now, if any."""
    if pid is None:
        return f"lock {folder / LOCK_NAME}: free (no deblurd writes to {folder} now)"
    return f"lock {folder / LOCK_NAME}: held by pid {pid or 'unknown (starting)'}"


def run(args: argparse.Namespace) -> int:
    """Show the running daemon's counters, fps, last result and error, and free disk space; exit with
    STATUS_CODES's code."""
    cfg = load_config(args.config)
    if args.output is not None:
        cfg.output.dir = args.output
    path = cfg.state_file
    pid = holder(cfg.output.dir)
    try:
        state = read_status(path)
    except FileNotFoundError:
        print(f"deblurd: no status file at {path}: the daemon has not run with this config "
              f"(start it with `deblurd run` or `systemctl start deblurd`); "
              + lock_line(cfg.output.dir, pid), file=sys.stderr)
        return UNKNOWN
    except (OSError, json.JSONDecodeError) as exc:
        print(f"deblurd: cannot read the status file {path} ({exc}): restart the daemon to rewrite it", file=sys.stderr)
        return UNKNOWN
    now = time.time()
    if args.json:
        _print(json.dumps({**state, "lock_holder": pid}, indent=1))
    else:
        _print(format_status(state, now) + "\n" + lock_line(cfg.output.dir, pid) + "\n"
               + lens_line(cfg, state.get("lens_position")))
    return exit_status(state, now)


def lens_line(cfg: Config, lens_position: Any) -> str:
    """The lens profile's summary and the blur it expects at the daemon's LensPosition for the configured subject
    plane (lens.subject_dioptres), or for a background at infinity when none is set."""
    path = profile_path(cfg.state_file, cfg.lens.profile)
    if not path.exists():
        return f"lens profile: none at {path} (deblurd calibrate makes one)"
    try:
        profile = load_profile(path)
    except LensProfileError as exc:
        return f"lens profile: {exc}"
    if not isinstance(lens_position, (int, float)):
        return profile.summary()
    plane = cfg.lens.subject_dioptres
    where = ("a background at infinity (set lens.subject_dioptres for the scene's plane)" if plane is None else
             f"the subject plane at {plane:g} dioptres" + (f" ({1 / plane:.2g} m)" if plane else "")
             + " (lens.subject_dioptres)")
    return (f"{profile.summary()}\nexpected blur at LensPosition {lens_position:g}: radius "
            f"{profile.expected_radius(lens_position, plane or 0.0, cfg.camera.width):.2f} px at {cfg.camera.width} "
            f"px for {where}")
