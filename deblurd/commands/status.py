"""show the running daemon's counters, fps, last result, last error and free disk space

`deblurd status` reads the state file (state_file.py) that the daemon replaces atomically every few seconds, and
asks the output folder's lock (lock.py) which process, if any, is writing there now.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

from deblurd.config import Config, load_config
from deblurd.optics.lens_profile import LensProfileError, load_profile, profile_path
from deblurd.output.layout import LOCK_NAME
from deblurd.output.lock import holder
from deblurd.output.state_file import STOPPED, is_stale, read_status


def _headline(state: dict[str, Any], now: float) -> str:
    age = now - state.get("updated", now)
    if state.get("state") == STOPPED:
        return (f"deblurd stopped ({state.get('exit_reason') or 'no reason recorded'}) {age:.0f} s ago, "
                f"pid {state.get('pid')}, ran {state.get('uptime_s', 0):.0f} s")
    return (f"deblurd {state.get('mode', '?')}, pid {state.get('pid')}, up {state.get('uptime_s', 0):.0f} s, "
            f"updated {age:.0f} s ago" + (" (STALE: is the daemon running?)" if is_stale(state, now) else ""))


def format_status(state: dict[str, Any], now: float) -> str:
    """The state as a few human lines."""
    lines = [_headline(state, now),
             f"source {state.get('source')}, models {state.get('models')}",
             f"fps {state.get('fps', 0):.2f}, frames in {state.get('frames_in', 0)}, out {state.get('frames_out', 0)}"]
    for route, counts in sorted(state.get("routes", {}).items()):
        lines.append(f"  {route:<8} in {counts.get('in', 0):>7}  out {counts.get('out', 0):>7}  "
                     f"dropped {counts.get('dropped', 0):>5}")
    for key in ("dropped", "not_stored", "readings", "last_result", "last_error"):
        if state.get(key):
            lines.append(f"{key.replace('_', ' ')}: {json.dumps(state[key], default=str)}")
    disk = state.get("disk", {})
    free = disk.get("free_mb", 0)
    lines.append(f"output {disk.get('dir')}: " + (f"{free:.0f} MB free" if free is not None else "free space unknown")
                 + (f" (floor {disk['min_free_mb']} MB)" if "min_free_mb" in disk else "")
                 + (f", NOT WRITING: {disk['full']}" if disk.get("full") else ""))
    if disk.get("removed_for_space"):
        lines.append(f"removed for space this run: {disk['removed_for_space']} result(s), last "
                     f"{json.dumps(disk.get('last_space_removal'))}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config file (default /etc/deblurd/deblurd.toml)")
    parser.add_argument("--output", type=Path, metavar="DIR", help="the --output folder the daemon was started with")
    parser.add_argument("--json", action="store_true", help="print the raw state JSON")


def _print(text: str) -> None:
    """Print, and treat a reader that stopped reading (`deblurd status | head -1`) as done, not as an error."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit must not fail again


def lock_line(folder: Path, pid: Optional[int]) -> str:
    """Who holds the output folder's lock: the daemon writing there now, if any."""
    if pid is None:
        return f"lock {folder / LOCK_NAME}: free (no deblurd writes to {folder} now)"
    return f"lock {folder / LOCK_NAME}: held by pid {pid or 'unknown (starting)'}"


def run(args: argparse.Namespace) -> int:
    """Show the running daemon's counters, fps, last result and error, and free disk space."""
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
        return 1
    except (OSError, json.JSONDecodeError) as exc:
        print(f"deblurd: cannot read the status file {path} ({exc}): restart the daemon to rewrite it", file=sys.stderr)
        return 1
    if args.json:
        _print(json.dumps({**state, "lock_holder": pid}, indent=1))
        return 0
    _print(format_status(state, time.time()) + "\n" + lock_line(cfg.output.dir, pid) + "\n"
           + lens_line(cfg, state.get("lens_position")))
    return 0


def lens_line(cfg: Config, lens_position: Any) -> str:
    """The lens profile's summary and the blur it expects at the daemon's LensPosition (background at infinity)."""
    path = profile_path(cfg.state_file, cfg.lens.profile)
    if not path.exists():
        return f"lens profile: none at {path} (deblurd calibrate makes one)"
    try:
        profile = load_profile(path)
    except LensProfileError as exc:
        return f"lens profile: {exc}"
    if not isinstance(lens_position, (int, float)):
        return profile.summary()
    return (f"{profile.summary()}\nexpected blur at LensPosition {lens_position:g}: radius "
            f"{profile.expected_radius(lens_position, 0.0, cfg.camera.width):.2f} px at {cfg.camera.width} px for "
            f"a background at infinity")
