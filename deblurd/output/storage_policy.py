"""Which continuous results are worth storing (output.store_every, max_per_minute, min_change, store_sharp).

Stored at 10 fps, every frame would fill a 32 GB card in a day and wear it out; the policy decides, per
continuous result, whether it goes to disk. Button stills are always stored. The policy limits storage, not
processing: every frame is still classified and restored, and counted in `deblurd status`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from deblurd.config import OutputConfig
from deblurd.output.store import Result

BURST_MINUTES = 10
"""The per-minute budget accumulates for up to this many minutes, so a short run (or the first frames after a
pause) stores its frames, while the long-run rate stays max_per_minute."""
THUMB_SIZE = (32, 24)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A tiny grey picture of the frame: enough to tell a changed scene from sensor noise."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


class StoragePolicy:
    """Says why a result is not stored (a short reason counted in the status), or None to store it."""

    def __init__(self, cfg: OutputConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.clock = cfg, clock
        self._seen = 0
        self._capacity = float(cfg.max_per_minute * BURST_MINUTES)
        self._tokens = self._capacity
        self._refilled = clock()
        self._last_thumb: np.ndarray | None = None

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self.cfg.max_per_minute / 60)
        self._refilled = now

    def skip_reason(self, result: Result) -> str | None:
        """None to store `result`; else why not. Call stored() once it is written."""
        if result.frame.kind == "still":
            return None
        self._seen += 1
        if (self._seen - 1) % self.cfg.store_every:
            return "store_every"
        if not self.cfg.store_sharp and result.severity.label == "sharp":
            return "sharp"
        if self.cfg.max_per_minute:
            self._refill()
            if self._tokens < 1:
                return "max_per_minute"
        if self.cfg.min_change and self._last_thumb is not None:
            if float(np.abs(thumbnail(result.frame.pixels) - self._last_thumb).mean()) < self.cfg.min_change:
                return "unchanged"
        return None

    def stored(self, result: Result) -> None:
        """Account for a stored continuous result (the rate budget and the last stored picture)."""
        if result.frame.kind == "still":
            return
        if self.cfg.max_per_minute:
            self._tokens -= 1
        if self.cfg.min_change:
            self._last_thumb = thumbnail(result.frame.pixels)
