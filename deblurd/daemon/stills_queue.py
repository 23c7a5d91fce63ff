"""The queue of button stills waiting for restoration: never dropped, bounded in bytes, spooled to disk from capture
until their result is stored (daemon/spool.py)."""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from deblurd.daemon.presses import PRESS_SUFFIX, press_of
from deblurd.daemon.spool import QueuedStill, SpoolFolder
from deblurd.errors import InputError
from deblurd.frames import Frame
from deblurd.log_limit import printable

log = logging.getLogger(__name__)

STILL_RAW_BYTES = 40_000_000
"""Queued stills are held as captured while they fit in this many bytes (one 12 MP still), the rest as JPEG."""


class StillQueue:
    """Button stills waiting for restoration, bounded in bytes rather than count alone: with a spool, each is on
    disk from its capture until its result is stored; in memory, a still is held as captured while its pixels and
    those of the still being restored or stored before its turn fit in `raw_bytes`, and beyond that only on disk
    (or as JPEG in memory, without a spool or when the disk refuses it)."""

    def __init__(self, raw_bytes: int = STILL_RAW_BYTES, spool: SpoolFolder | None = None) -> None:
        self.raw_bytes = raw_bytes
        self.spool = spool
        self._items: deque[Frame | QueuedStill | Path] = deque()
        self._in_hand: Callable[[], Frame | None] = lambda: None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def in_hand(self) -> Frame | None:
        """The still last taken out, while something (its restoration, its result on the way to disk) holds it."""
        return self._in_hand()

    @property
    def nbytes(self) -> int:
        """Bytes of pixels and JPEGs held in memory (spooled stills hold none)."""
        return sum(i.pixels.nbytes if isinstance(i, Frame) else len(i.jpeg) if isinstance(i, QueuedStill) else 0
                   for i in tuple(self._items))  # a snapshot: prepare() reads this outside the pipeline's lock

    def append(self, frame: Frame) -> None:
        self.add(self.prepare(frame))

    def prepare(self, frame: Frame) -> Frame | QueuedStill | Path:
        """The form a still waits in. With a spool, every still is written there first, so a press survives
        whatever happens next; it also waits in memory as captured while the byte budget allows (no decoding
        before its turn), else on disk only, or as JPEG in memory when there is no spool or the disk refuses it.
        The slow part of append, which a caller can run outside its lock."""
        packed = QueuedStill.pack(frame) if self.spool is not None else None
        spooled = self._spool(packed) if packed is not None else None
        if self._held_while_waiting(frame) + frame.pixels.nbytes <= self.raw_bytes:
            return frame if spooled is None else replace(frame, spool=spooled)
        return spooled if spooled is not None else packed or QueuedStill.pack(frame)

    def _held_while_waiting(self, frame: Frame) -> int:
        """Bytes held in memory beside a still queued now, while it waits: the queue's, and the one still decoded at
        a time before its turn: the still in hand, or, between two stills, the next one out (about this size)."""
        in_hand = self.in_hand
        ahead = in_hand.pixels.nbytes if in_hand is not None else frame.pixels.nbytes if self._items else 0
        return self.nbytes + ahead

    def add(self, item: Frame | QueuedStill | Path) -> None:
        """Queue a still prepared by prepare()."""
        self._items.append(item)

    def _spool(self, still: QueuedStill) -> Path | None:
        """The still written to the spool, or None (the disk refuses it: it waits in memory)."""
        assert self.spool is not None
        try:
            return self.spool.write(still, press_of(still.metadata))
        except OSError as exc:
            log.warning("still %d held in memory only: cannot spool it to %s (%s)", still.seq, self.spool.folder, exc)
            return None

    def popleft(self) -> Frame:
        item = self._items.popleft()
        if isinstance(item, Path):
            assert self.spool is not None  # only a spool queues paths
            frame = self.spool.read(item)
        else:
            frame = item if isinstance(item, Frame) else item.unpack()
        self._in_hand = weakref.ref(frame)
        return frame

    def recover(self) -> int:
        """Queue the stills an earlier run left in the spool (a passed stop deadline, a crash); returns how many.
        Each is bounded and decoded once here, so that the spool never holds a still that cannot be restored: one
        over the pixel limit or damaged is moved to the spool's rejected/ with its reason and named (a bomb left
        there cannot crash every start); one that cannot be read now (permissions) is left where it is. What a
        crash between two writes left is settled first (SpoolFolder.repair)."""
        if self.spool is None:
            return 0
        self.spool.repair()
        found = 0
        for jpeg in self.spool.waiting():
            try:
                self.spool.read(jpeg)
            except (InputError, ValueError, KeyError, TypeError) as exc:  # what the files hold, not access to them
                self.spool.reject(jpeg, f"{type(exc).__name__}: {exc}")
                continue
            except OSError as exc:
                log.error("spooled still %s cannot be read (%s): left where it is", printable(jpeg), exc)
                continue
            self._items.append(jpeg)
            found += 1
        return found

    def spill(self) -> int:
        """Write the stills held only in memory (their spooling failed) to the spool: the stop deadline passed, and
        the next start restores what the spool holds. Returns how many were written now; what the disk still
        refuses is lost with the process, and named."""
        if self.spool is None:
            return 0
        spilled = 0
        for index, item in enumerate(self._items):
            if isinstance(item, Path) or (isinstance(item, Frame) and item.spool is not None):
                continue
            packed = QueuedStill.pack(item) if isinstance(item, Frame) else item
            try:
                self._items[index] = self.spool.write(packed, press_of(packed.metadata))
                spilled += 1
            except OSError as exc:
                log.error("still %d lost: cannot spool it to %s (%s)", packed.seq, self.spool.folder, exc)
        return spilled

    def keep_on_disk(self, frame: Frame) -> bool:
        """A still whose result the disk refused until the stop: spooled now if it is not yet (the next start
        restores it); False, and said, when the disk refuses it still."""
        if frame.spool is not None:
            return True
        if self.spool is None:
            return False
        packed = QueuedStill.pack(frame)
        try:
            self.spool.write(packed, press_of(packed.metadata))
            return True
        except OSError as exc:
            press = press_of(frame.metadata)
            kept = press is not None and (self.spool.folder / f"{press}{PRESS_SUFFIX}").exists()
            log.error("still %d not stored: the disk still refuses it at the stop (%s)%s", frame.seq, exc,
                      "; its press is recorded, so the next start takes a new still for it" if kept else "")
            return False
