"""The one frame pacer: when the next frame is due at a frame rate, for the sources that pace their own frames
(replay, the simulated camera) and for the daemon's capture thread (the governor's factor on the configured rate)."""

from __future__ import annotations

import time

from deblurd.errors import CaptureTimeout

MIN_FACTOR = 1e-3
"""The smallest rate factor honoured (a factor of 0 would mean a frame never)."""


class Pacer:
    """Frames at `fps` times a factor, no sooner than one interval apart. After a stall the pacer catches up at most
    `catch_up_s` (None: one frame interval), so a late reader gets its cadence back, not a burst of frames."""

    def __init__(self, fps: float, now: float | None = None, catch_up_s: float | None = None) -> None:
        self.fps = fps
        self.next_due = time.monotonic() if now is None else now
        self.catch_up_s = 1.0 / fps if catch_up_s is None else catch_up_s

    def wait_s(self, now: float) -> float:
        """Seconds until the next frame is due (zero or less: due now)."""
        return self.next_due - now

    def advance(self, now: float, factor: float = 1.0) -> None:
        """A frame was taken at `now`: the next is due one interval (at fps x factor) after this one was."""
        self.next_due = max(self.next_due, now - self.catch_up_s) + 1.0 / (self.fps * max(factor, MIN_FACTOR))

    def wait(self, timeout: float, source: str) -> None:
        """Sleep until the next frame is due and take it; a frame due later than `timeout` raises CaptureTimeout
        (naming `source`) after waiting `timeout`, as a camera that does not deliver in time would."""
        wait = self.wait_s(time.monotonic())
        if wait > timeout:
            time.sleep(timeout)
            raise CaptureTimeout(f"{source}: next frame due in {wait:.2f} s")
        if wait > 0:
            time.sleep(wait)
        self.advance(time.monotonic())
