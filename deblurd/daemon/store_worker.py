"""The store thread's work: write the results the storage policy keeps, and keep the gallery fresh.

pipeline.py wires it: inference hands results over through a bounded queue (back-pressure, never a drop) and a
None ends the thread. A still the full disk refuses waits in memory, counted against the still queue, and is
written as soon as the store may try again; at stop it goes to the spool, if the disk takes it there, for the next
start to restore. The gallery is refreshed at most every few seconds while results flow, and once at the end.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from deblurd.config import OutputConfig
from deblurd.daemon.hooks import ServiceHooks
from deblurd.daemon.presses import PressBook, press_of
from deblurd.daemon.spool import SpoolFolder
from deblurd.daemon.stats import Stats
from deblurd.daemon.stills_queue import StillQueue
from deblurd.output.gallery import GalleryUpdater
from deblurd.output.layout import IndexEntry
from deblurd.output.storage_policy import StoragePolicy
from deblurd.output.store import Result, ResultStore

log = logging.getLogger(__name__)


class StoreWorker:
    """The body of the store thread (`run`) and what it holds: the stills waiting for the disk (`unsaved`), whether
    a result is being written (`writing`) and the last result stored (`last_result`, for the status)."""

    def __init__(self, store: ResultStore, output: OutputConfig, presses: PressBook, stills: StillQueue, stats: Stats,
                 hooks: ServiceHooks, results: queue.Queue[Result | None], error: Callable[[str], None],
                 indicate: Callable[[str], None], poll_s: float) -> None:
        self.store, self.presses, self.stills = store, presses, stills
        self.stats, self.hooks, self.results = stats, hooks, results
        self.policy = StoragePolicy(output)
        self.gallery = GalleryUpdater(store)
        self._error, self._indicate, self._poll_s = error, indicate, poll_s
        self.unsaved: deque[Result] = deque()
        self.writing = False
        self.last_result: dict[str, Any] | None = None

    def run(self) -> None:
        """Write results until the None that ends the thread; then settle the stills the disk refused."""
        while (result := self._next_result()) is not None:
            self.writing = True
            self._store_one(result)
            self.writing = False
            del result  # a still's pixels (72 MB at 12 MP) are not held while the next result is awaited
            self.results.task_done()
            self.hooks.watchdog()
        self._retry_unsaved()
        self._spill_unsaved()
        self.gallery.refresh()

    def _next_result(self) -> Result | None:
        """The next result to write (None: stop); the gallery is refreshed, at most every few seconds, meanwhile."""
        while True:
            self.gallery.maybe_refresh()
            self._retry_unsaved()
            try:
                return self.results.get(timeout=self._poll_s)
            except queue.Empty:
                continue

    def _store_one(self, result: Result) -> None:
        label = result.severity.label
        self.stats.done()
        reason = self.policy.skip_reason(result)
        if reason is not None:
            self.stats.skip(reason)
            return
        t0 = time.perf_counter()
        entry = self.store.save(result)
        self.stats.time({"store_s": time.perf_counter() - t0})
        if entry is None:
            self._error(f"not writing results: {self.store.full_reason}")
            if result.frame.kind == "still":
                self.unsaved.append(result)  # waits in memory (counted against the still queue) for the disk
                return
            self.stats.count(label, "dropped")
            self.stats.drop("disk_full")
            return
        self._stored(result, entry)

    def _stored(self, result: Result, entry: IndexEntry) -> None:
        """Count a stored result; a still no longer needs its spooled copy or its press record."""
        if result.frame.spool is not None:
            SpoolFolder.release(result.frame.spool)
        self.presses.done(press_of(result.frame.metadata))
        self.policy.stored(result)
        self.stats.count(result.severity.label, "out")
        self.stats.stored()
        self.last_result = {**entry.to_json(), "scores": result.severity.scores}
        self._indicate("running")

    def _retry_unsaved(self) -> None:
        """Stills the full disk refused, oldest first, as soon as the store may try again (store.retry_s)."""
        while self.unsaved and (entry := self.store.save(self.unsaved[0])) is not None:
            self._stored(self.unsaved.popleft(), entry)
            log.info("still %d stored: the disk takes results again", entry.id)

    def _spill_unsaved(self) -> None:
        """At stop, stills the disk still refuses go to the spool, if it takes them now (the next start restores
        them); a still neither takes is counted as dropped (spool.py says whether its press is retaken)."""
        while self.unsaved:
            result = self.unsaved.popleft()
            if self.stills.keep_on_disk(result.frame):
                self.stats.leave("spooled", 1)
            else:
                self.stats.count(result.severity.label, "dropped")
                self.stats.drop("disk_full")
