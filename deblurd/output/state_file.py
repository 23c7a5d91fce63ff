"""The state file: the small JSON the daemon replaces atomically every few seconds and `deblurd status` reads.

It says "state": "running" while the daemon works and "stopped" (with "exit_reason") as its last word, so a
reader can tell a clean stop from a daemon that died (a running state that is no longer updated: STALE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deblurd.atomic import AtomicWriter

STALE_FACTOR = 3
"""A running state older than this many status intervals means the daemon is not running (or is stuck)."""
RUNNING, STOPPED = "running", "stopped"


def write_status(path: Path, state: dict[str, Any], writer: AtomicWriter) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write(path, json.dumps(state, indent=1, default=str).encode())


def read_status(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def is_stale(state: dict[str, Any], now: float) -> bool:
    """A daemon that says it is running but has not updated the file for STALE_FACTOR intervals."""
    age = now - state.get("updated", now)
    return state.get("state", RUNNING) == RUNNING and age > STALE_FACTOR * state.get("interval_s", 5)
