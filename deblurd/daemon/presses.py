"""Presses waiting for their still: a small record per accepted press in `.stills-spool/`, written before the press
is acknowledged, so that a crash between a press and its capture does not lose it.

A press comes from the GPIO button (the daemon writes its record) or from `deblurd still` (the command writes the
record and wakes the daemon with SIGUSR1; the daemon also looks for records every PRESS_SCAN_S). Either way the
daemon then treats it alike: it takes the still, spools it under the press's name (`<name>.jpg` and `.json`, see
spool.py) and only then removes `<name>.press`; a still whose spooling fails keeps its record until its result
is stored. At the next start, a record whose still is not spooled is a press a crash overtook: its still is
taken then (a user who pressed expects a photo, even a late one; the sidecar's `pressed_at` shows how late).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deblurd.atomic import AtomicWriter
from deblurd.output.layout import SPOOL_DIR, confined, is_plain_dir, refuse

log = logging.getLogger(__name__)

PRESS_SUFFIX = ".press"
PRESS_SCAN_S = 1.0
"""How often the daemon looks for press records that `deblurd still` wrote, when no SIGUSR1 says so sooner."""
_counter = itertools.count(1)
_NAME = re.compile(r"^\d{6,}\.\d{6}-\d{1,10}-\d{5,}$")


@dataclass(frozen=True)
class Press:
    """One accepted press: its name (shared by its record and its spooled still), when and how it came."""

    name: str
    pressed_at: float
    via: str
    durable: bool = True
    """False: the disk refused the record, so the press lives in memory only (a crash before its still loses it)."""


def press_name(pressed_at: float) -> str:
    """A name unique across processes (the pid) and within one (a counter), sorting in press order."""
    return f"{pressed_at:017.6f}-{os.getpid()}-{next(_counter):05d}"


def press_of(metadata: dict[str, Any]) -> str | None:
    """The press a frame's metadata names, if it is a press name at all (metadata read back from the spool is
    untrusted: a crafted name must never become a path)."""
    name = metadata.get("press")
    return name if isinstance(name, str) and _NAME.match(name) else None


def record_press(output_dir: Path, via: str, writer: AtomicWriter | None = None) -> Press:
    """Write a press's record into the output folder's spool, whole and fsynced; the press is durable on return.
    UnsafePath when the spool is a link, OSError when the disk or the permissions refuse it."""
    now = time.time()
    press = Press(press_name(now), now, via)
    write_record(Path(output_dir), press, writer)
    return press


def write_record(output_dir: Path, press: Press, writer: AtomicWriter | None = None) -> None:
    """record_press for a press already named (the daemon claims the name before the record exists)."""
    spool = confined(output_dir, SPOOL_DIR)
    spool.mkdir(exist_ok=True)
    (writer or AtomicWriter()).write(spool / f"{press.name}{PRESS_SUFFIX}",
                                     json.dumps({"pressed_at": press.pressed_at, "via": press.via}).encode())


def _read_record(path: Path) -> Press:
    """A record read without following links; what cannot be read is a press of unknown time and origin."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            data = json.loads(f.read(4096))
        pressed_at, via = float(data["pressed_at"]), str(data["via"])[:40]
    except (OSError, ValueError, KeyError, TypeError):
        pressed_at, via = path.stat().st_mtime if path.exists() else time.time(), "unknown"
    return Press(path.name[:-len(PRESS_SUFFIX)], pressed_at, via)


class PressBook:
    """The daemon's presses between acceptance and capture, oldest first: those accepted here and the records
    found on disk (claimed as room allows, so that a record is turned into one still, not one per scan), until
    their still is spooled or stored. Thread-safe."""

    def __init__(self, output_dir: Path, writer: AtomicWriter | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.folder = self.output_dir / SPOOL_DIR
        self.writer = writer or AtomicWriter()
        self._queue: deque[Press] = deque()
        self._claimed: set[str] = set()
        self._scan_at = 0.0
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Make the spool now, as the daemon's user: `deblurd still` run as root must not be the one to make it."""
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as exc:
            log.warning("cannot make the spool %s (%s): presses wait in memory until it can be", self.folder, exc)

    def __len__(self) -> int:
        """Presses waiting for their still to be taken."""
        return len(self._queue)

    def accept(self, via: str) -> Press:
        """Record a press and queue it; when the disk refuses the record, the press is held in memory (and said).
        Its name is claimed before its record is written, so that a scan meanwhile does not queue it twice."""
        now = time.time()
        press = Press(press_name(now), now, via)
        with self._lock:
            self._claimed.add(press.name)
        try:
            write_record(self.output_dir, press, self.writer)
        except (OSError, ValueError) as exc:
            press = replace(press, durable=False)
            log.warning("press %s held in memory only: cannot record it in %s (%s); a crash before its still is "
                        "stored loses it", press.name, self.folder, exc)
        with self._lock:
            self._queue.append(press)
        return press

    def poke(self) -> None:
        """Scan for records at the next take() (`deblurd still` wrote one); safe from a signal handler."""
        self._scan_at = 0.0

    def take(self, room: int) -> Press | None:
        """The oldest press waiting for its still; records on disk are claimed first (every PRESS_SCAN_S, or at
        once after poke()) while `room` allows more stills in hand."""
        if time.monotonic() >= self._scan_at:
            self._scan_at = time.monotonic() + PRESS_SCAN_S
            self._claim(room)
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def put_back(self, press: Press) -> None:
        """A press whose still could not be taken now (a capture timeout): it goes first next time."""
        with self._lock:
            self._queue.appendleft(press)

    def waiting(self) -> list[Path]:
        """Press records on disk still waiting for their still, oldest first. A record whose still is spooled
        (a crash came between the two) is removed; one that is a link, or a name deblurd does not give, is
        refused."""
        if not is_plain_dir(self.folder):
            return []
        found = []
        for name in sorted(os.listdir(self.folder)):
            if not name.endswith(PRESS_SUFFIX) or name.startswith("."):
                continue
            path = self.folder / name
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode) or not _NAME.match(name[:-len(PRESS_SUFFIX)]):
                refuse(self.folder, name, "not a press record (a link, or a name deblurd does not give)")
            elif os.path.lexists(self.folder / f"{name[:-len(PRESS_SUFFIX)]}.json"):
                path.unlink(missing_ok=True)
            else:
                found.append(path)
        return found

    def _claim(self, room: int) -> None:
        with self._lock:
            for path in self.waiting():
                if room <= 0:
                    break
                name = path.name[:-len(PRESS_SUFFIX)]
                if name not in self._claimed and path.exists():
                    self._claimed.add(name)
                    self._queue.append(_read_record(path))
                    room -= 1

    def done(self, name: str | None) -> None:
        """The press's still is spooled or stored: remove its record and forget it (a name press_of() checked)."""
        if name is None:
            return
        with self._lock:
            try:
                (self.folder / f"{name}{PRESS_SUFFIX}").unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove the press record %s%s in %s (%s): it may give one more still at the "
                            "next start", name, PRESS_SUFFIX, self.folder, exc)
            self._claimed.discard(name)

    def say_left_behind(self) -> None:
        """At the stop: presses not yet taken are taken at the next start, unless the disk refused their record."""
        with self._lock:
            left = list(self._queue)
        lost = [p.name for p in left if not p.durable]
        if left:
            log.warning("%d press(es) not taken before the stop%s", len(left),
                        f"; lost (the disk refused their records): {', '.join(lost)}" if lost else
                        ": their records stay in the spool and the next start takes their stills")
