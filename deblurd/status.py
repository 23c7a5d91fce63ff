"""show the running daemon's counters, fps, last result, last error and free disk space

`deblurd status` reads the small JSON state file that the daemon replaces atomically every few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from deblurd.config import load_config
from deblurd.store import AtomicWriter

STALE_FACTOR = 3
"""A state file older than this many status intervals means the daemon is not running (or is stuck)."""


def write_status(path: Path, state: dict[str, Any], writer: AtomicWriter) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write(path, json.dumps(state, indent=1, default=str).encode())


def read_status(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def format_status(state: dict[str, Any], now: float) -> str:
    """The state as a few human lines."""
    age = now - state.get("updated", now)
    stale = age > STALE_FACTOR * state.get("interval_s", 5)
    lines = [f"deblurd {state.get('mode', '?')}, pid {state.get('pid')}, up {state.get('uptime_s', 0):.0f} s, "
             f"updated {age:.0f} s ago" + (" (STALE: is the daemon running?)" if stale else ""),
             f"source {state.get('source')}, models {state.get('models')}",
             f"fps {state.get('fps', 0):.2f}, frames in {state.get('frames_in', 0)}, out {state.get('frames_out', 0)}"]
    for route, counts in sorted(state.get("routes", {}).items()):
        lines.append(f"  {route:<8} in {counts.get('in', 0):>7}  out {counts.get('out', 0):>7}  "
                     f"dropped {counts.get('dropped', 0):>5}")
    for key in ("dropped", "readings", "last_result", "last_error"):
        if state.get(key):
            lines.append(f"{key.replace('_', ' ')}: {json.dumps(state[key], default=str)}")
    disk = state.get("disk", {})
    lines.append(f"output {disk.get('dir')}: {disk.get('free_mb', 0):.0f} MB free"
                 + (f", NOT WRITING: {disk['full']}" if disk.get("full") else ""))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config file (default /etc/deblurd/deblurd.toml)")
    parser.add_argument("--output", type=Path, metavar="DIR", help="the --output folder the daemon was started with")
    parser.add_argument("--json", action="store_true", help="print the raw state JSON")


def run(args: argparse.Namespace) -> int:
    """Show the running daemon's counters, fps, last result and error, and free disk space."""
    cfg = load_config(args.config)
    if args.output is not None:
        cfg.output.dir = args.output
    path = cfg.state_file
    try:
        state = read_status(path)
    except FileNotFoundError:
        print(f"deblurd: no status file at {path}: the daemon has not run with this config "
              f"(start it with `deblurd run` or `systemctl start deblurd`)", file=sys.stderr)
        return 1
    except (OSError, json.JSONDecodeError) as exc:
        print(f"deblurd: cannot read the status file {path} ({exc}): restart the daemon to rewrite it", file=sys.stderr)
        return 1
    print(json.dumps(state, indent=1) if args.json else format_status(state, time.time()))
    return 0
