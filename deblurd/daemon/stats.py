"""The pipeline's counters and timings, shared by its threads and shown by `deblurd status`.

Every frame that comes in (captured, or a still an earlier run spooled) ends in exactly one of: stored
(frames_out), not stored by the storage policy (not_stored), dropped (a loss: dropped), or left when the daemon
stopped (left_at_stop: discarded continuous frames, stills spooled for the next start, results a stalled disk
did not take). The rest are in flight (queued or being restored), so at every moment

    frames_in = frames_out + sum(not_stored) + sum(dropped) + sum(left_at_stop) + in_flight,  in_flight >= 0,

and in_flight is 0 once stopped. Still requests refused (queue full, too hot) never became frames: `refused`.
"""

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
    left_at_stop: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    stage_totals: dict[str, float] = field(default_factory=dict)
    done_at: deque[float] = field(default_factory=lambda: deque(maxlen=FPS_WINDOW))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, route: str, what: str) -> None:
        with self.lock:
            counts = self.routes.setdefault(route, {"in": 0, "out": 0, "dropped": 0})
            counts[what] += 1

    def arrive(self, n: int = 1) -> None:
        """Frames in: captured, or recovered from the spool."""
        with self.lock:
            self.frames_in += n

    def stored(self) -> None:
        with self.lock:
            self.frames_out += 1

    def drop(self, reason: str) -> None:
        """A frame lost (the continuous queue overflowed, the disk was full)."""
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def refuse(self, reason: str) -> None:
        """A still request refused before it became a frame."""
        with self.lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def leave(self, reason: str, n: int) -> None:
        """Frames in hand when the daemon stopped that will not be stored by this run."""
        if n:
            with self.lock:
                self.left_at_stop[reason] = self.left_at_stop.get(reason, 0) + n

    def in_flight(self) -> int:
        """Frames in that have not ended yet (the identity in the module's docstring); call with the lock held."""
        return (self.frames_in - self.frames_out - sum(self.not_stored.values()) - sum(self.dropped.values())
                - sum(self.left_at_stop.values()))

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
