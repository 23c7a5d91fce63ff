"""What may reach a log line or the terminal: names with their control characters escaped (so a file name cannot
forge a log line or drive the terminal), and rate-limited logging for faults that recur on every frame (one line,
then a count, not a line per frame)."""

from __future__ import annotations

import logging
import os
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

SUMMARY_INTERVAL_S = 60.0
UNPRINTABLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
"""Unicode categories escaped in names: controls (newline, ESC), format characters (bidirectional overrides),
lone surrogates (undecodable bytes of a file name) and line and paragraph separators."""


def printable(name: object) -> str:
    """`name` (a path, a file name, any text) fit for one log line or terminal line: a backslash and every
    unprintable character are written as Python escapes (a newline as \\n, ESC as \\x1b), so what is shown
    reads back as the name and nothing in it starts a line or moves the cursor."""
    text = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if c == "\\" or unicodedata.category(c) in UNPRINTABLE
                   else c for c in text)


@dataclass
class _Run:
    since: float
    repeats: int = 0


class RepeatLimiter:
    """Logs the first occurrence of a fault (by key) at once, then at most one line per interval with how many
    times it repeated; `clear(key)` ends the run with a closing line when repeats went unlogged."""

    def __init__(self, logger: logging.Logger, interval_s: float = SUMMARY_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval_s, self.clock = logger, interval_s, clock
        self._runs: dict[str, _Run] = {}

    def log(self, level: int, key: str, message: str) -> bool:
        """Log `message` if it starts a run or the interval has passed; True when a line was written."""
        now = self.clock()
        run = self._runs.get(key)
        if run is None:
            self._runs[key] = _Run(now)
            self.logger.log(level, message)
            return True
        run.repeats += 1
        if now - run.since < self.interval_s:
            return False
        self.logger.log(level, "%s (%d time(s) in the last %.0f s)", message, run.repeats, now - run.since)
        self._runs[key] = _Run(now)
        return True

    def active(self, key: str) -> bool:
        return key in self._runs

    def clear(self, key: str, message: str) -> None:
        """End a run: log `message` (with the unlogged repeat count) when the fault had been logged."""
        run = self._runs.pop(key, None)
        if run is not None:
            suffix = f" ({run.repeats} repeat(s) since the last line)" if run.repeats else ""
            self.logger.info("%s%s", message, suffix)
