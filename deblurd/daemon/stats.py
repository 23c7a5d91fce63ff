"""The pipeline's counters and timings, shared by its threads and shown by `deblurd status`."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

FPS_WINDOW = 30


@dataclass
class Stats:
    """Counters and per-stage timings shown by `deblurd status`; updated from several threads."""

    frames_in: int = 0
    frames_out: int = 0
    processed: int = 0
    routes: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    not_stored: dict[str, int] = field(default_factory=dict)
    stage_totals: dict[str, float] = field(default_factory=dict)
    done_at: deque[float] = field(default_factory=lambda: deque(maxlen=FPS_WINDOW))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, route: str, what: str) -> None:
        with self.lock:
            counts = self.routes.setdefault(route, {"in": 0, "out": 0, "dropped": 0})
            counts[what] += 1

    def drop(self, reason: str) -> None:
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def skip(self, reason: str) -> None:
        """A result the storage policy chose not to store (not a loss: counted apart from drops)."""
        with self.lock:
            self.not_stored[reason] = self.not_stored.get(reason, 0) + 1

    def time(self, timings: dict[str, float]) -> None:
        with self.lock:
            for stage, seconds in timings.items():
                self.stage_totals[stage] = self.stage_totals.get(stage, 0.0) + seconds

    def done(self) -> None:
        with self.lock:
            self.done_at.append(time.monotonic())

    def fps(self) -> float:
        """Frames through the whole pipeline per second (stored or not), over the last FPS_WINDOW."""
        with self.lock:
            span = self.done_at[-1] - self.done_at[0] if len(self.done_at) > 1 else 0.0
            return (len(self.done_at) - 1) / span if span > 0 else 0.0
