"""The daemon loop, in one place: source → classify → route → restore → store → gallery.

Three threads, data flowing one way. The capture thread reads the source and fills two queues: continuous frames
(bounded; the oldest is dropped, and counted, when inference falls behind) and button stills (never dropped; a
request is refused only when the still queue is full). The calling thread classifies and restores. The store thread
writes the results the storage policy keeps, and refreshes the gallery (store_worker.py), so disk I/O overlaps with
inference; its bounded queue holds inference back rather than dropping a processed frame. The governor paces
capture; the service hooks and indicator hear about progress. All three have do-nothing defaults here; the real ones
(thermal, systemd, GPIO) live in their own modules, as do the stills queue and spool (stills_queue.py, spool.py),
lens steering (lens_steering.py) and the status's shape (status_report.py): this module wires them.

Stopping: a fatal error in any thread, a signal (the CLI calls stop()), or max_frames. The pipeline then gives
itself STOP_GRACE_S to finish stills in hand and write queued results, writes a final "stopped" status with the
reason, and returns or raises, whatever state a stuck thread is in.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from deblurd.capture.camera import FrameSource
from deblurd.capture.pacing import Pacer
from deblurd.config import Config
from deblurd.daemon.heap import return_large_buffers
from deblurd.daemon.hooks import (
    Decision,
    Governor,
    Indicator,
    NullGovernor,
    NullHooks,
    NullIndicator,
    ServiceHooks,
    SteadyDecision,
)
from deblurd.daemon.lens_steering import LensSteering
from deblurd.daemon.presses import Press, PressBook
from deblurd.daemon.service import on_a_terminal
from deblurd.daemon.spool import SpoolFolder
from deblurd.daemon.stats import Stats
from deblurd.daemon.status_report import progress_line, ready_line, status, stop_line, summary
from deblurd.daemon.stills_queue import StillQueue
from deblurd.daemon.store_worker import StoreWorker
from deblurd.errors import CameraError, CaptureTimeout, DeblurdError
from deblurd.frames import Frame
from deblurd.log_limit import RepeatLimiter
from deblurd.optics.lens_profile import LensCalibration
from deblurd.output.state_file import write_status
from deblurd.output.store import Result, ResultStore, StoreError
from deblurd.restore.inference import ModelPack
from deblurd.restore.router import FrameRouter, Router

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
"""How often a paused capture thread re-asks the governor; keeps idle CPU near zero."""
STOP_GRACE_S = 5.0
"""After a stop request, the time allowed to finish stills in hand and write queued results; a thread still busy
after that (a disk that hangs, a camera that never returns) is left behind and the daemon exits anyway."""
CATCH_UP_S = 1.0
"""After a stall (a paused governor, a slow read), continuous capture catches up at most this much."""


class Pipeline:
    """Wires a source, a model pack and a store; `run()` blocks until stopped or max_frames are done."""

    def __init__(self, source: FrameSource, pack: ModelPack, store: ResultStore, cfg: Config,
                 governor: Governor | None = None, hooks: ServiceHooks | None = None,
                 indicator: Indicator | None = None, router: FrameRouter | None = None,
                 lens_profile: LensCalibration | None = None) -> None:
        self.source, self.pack, self.store, self.cfg = source, pack, store, cfg
        self.lens = LensSteering(cfg.lens, lens_profile, pack.manifest)
        self.router: FrameRouter = router or Router(pack)
        self.governor = governor or NullGovernor()
        self.hooks = hooks or NullHooks()
        self.indicator = indicator or NullIndicator()
        self.stats = Stats()
        self.decision: Decision = SteadyDecision()
        self.last_error: dict[str, Any] | None = None
        self.exit_reason: str | None = None
        self._continuous: deque[Frame] = deque()
        self._stills = StillQueue(spool=SpoolFolder(store.spool_dir, store.writer, cfg.camera.max_image_pixels))
        self.presses = PressBook(store.dir, store.writer)
        self._lock = threading.Lock()
        self._frames = threading.Condition(self._lock)
        self._results: queue.Queue[Result | None] = queue.Queue(maxsize=cfg.pipeline.queue_size)
        self._saver = StoreWorker(store, cfg.output, self.presses, self._stills, self.stats, self.hooks, self._results,
                                  self._error, self._indicate, IDLE_POLL_S)
        self._store_thread: threading.Thread | None = None
        self._hook_lock = threading.Lock()
        self._alerts = RepeatLimiter(log)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stop_deadline = float("inf")
        self._continuous_on = True
        self._idle_by_choice = False
        self._fatal: BaseException | None = None
        self._stuck: str | None = None
        self._stopped = False
        self._indicator_state = ""
        self._started = time.time()
        self._last_status = 0.0
        self._last_progress = time.monotonic()
        self._talks = on_a_terminal() and cfg.logging.progress_s > 0

    def _stills_held(self) -> int:
        """Presses accepted and not yet stored: waiting for capture, for restoration, or for the disk."""
        return len(self.presses) + len(self._stills) + len(self._saver.unsaved)

    def request_still(self, via: str = "button") -> bool:
        """Ask for one full-resolution still (thread-safe): the press is recorded on disk before True is returned,
        so a crash cannot lose it (presses.py). False, counted as a drop, when the still queue is full."""
        with self._lock:
            if self._stills_held() >= self.cfg.pipeline.still_queue_size:
                self.stats.refuse("still_queue_full")
                return False
        self.presses.accept(via)
        self._wake.set()
        return True

    def poke(self) -> None:
        """Look for press records (`deblurd still` wrote one) now; safe from a signal handler."""
        self.presses.poke()
        self._wake.set()

    def set_continuous(self, enabled: bool) -> None:
        """Pause or resume continuous capture; stills are still taken."""
        self._continuous_on = enabled
        log.info("continuous capture %s", "on" if enabled else "off")
        self._wake.set()

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to finish the frame in hand and return within STOP_GRACE_S (safe from a signal handler);
        the first reason given is the one the final status records."""
        if not self._stop.is_set():
            self.exit_reason = reason
            self._stop_deadline = time.monotonic() + STOP_GRACE_S
        self._stop.set()
        self._wake.set()

    def _overdue(self) -> bool:
        return time.monotonic() > self._stop_deadline

    def _indicate(self, state: str) -> None:
        with self._hook_lock:
            if state != self._indicator_state:
                self._indicator_state = state
                self.indicator.set_state(state)

    def _error(self, message: str, log_key: str | None = None) -> None:
        """Record an error for the status and the LED; log it (rate-limited per key) unless its owner has."""
        self.last_error = {"time": time.time(), "message": message}
        self._indicate("error")
        if log_key is not None:
            self._alerts.log(logging.WARNING, log_key, message)

    def _guarded(self, name: str, work: Callable[[], None]) -> Callable[[], None]:
        """A thread body whose fatal error stops the pipeline; run() re-raises it in the calling thread."""
        def body() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                log.error("fatal error in the %s thread: %s", name, exc, exc_info=not isinstance(exc, DeblurdError))
                self._fatal = self._fatal or exc
                self.stop(f"fatal error in the {name} thread: {exc}")
                with self._frames:
                    self._frames.notify_all()
        return body

    # capture thread ------------------------------------------------------------------------------------------

    def _capture(self) -> None:
        timeout = self.cfg.camera.capture_timeout_s
        pacer = Pacer(self.cfg.camera.fps, time.monotonic(), CATCH_UP_S)
        while not self._stop.is_set():
            self.decision = decision = self.governor.decide()
            press = self.presses.take(self.cfg.pipeline.still_queue_size - self._stills_held())
            if press is not None:
                self._capture_still(decision, press)
                continue
            self._idle_by_choice = not self._continuous_on or not decision.allows_continuous
            if self._idle_by_choice:
                self._indicate("paused")
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
                continue
            delay = pacer.wait_s(time.monotonic())
            if delay > 0 and self._wake.wait(delay):
                self._wake.clear()
                continue
            pacer.advance(time.monotonic(), decision.factor)
            try:
                frame = self.source.read(timeout)
            except CaptureTimeout as exc:
                self._error(str(exc), log_key="capture")
                continue
            self._indicate("running")
            with self._frames:
                self.stats.arrive()
                if len(self._continuous) >= self.cfg.pipeline.queue_size:
                    self._continuous.popleft()
                    self.stats.drop("queue_full")
                self._continuous.append(frame)
                self._frames.notify()

    def _capture_still(self, decision: Decision, press: Press) -> None:
        """Take the press's still and spool it under the press's name; then its record has done its job."""
        if not decision.allows_still:
            log.warning("still refused: the Pi is critically hot (%s); press %s (%s) is lost", decision.readings,
                        press.name, press.via)
            self.stats.refuse("critical")
            self.presses.done(press.name)
            return
        try:
            frame = self.source.capture_still()
        except CaptureTimeout as exc:
            self._error(str(exc), log_key="capture")
            self.presses.put_back(press)
            return
        frame = replace(frame, metadata={**frame.metadata, "press": press.name, "pressed_at": press.pressed_at,
                                         "press_via": press.via})
        waiting = self._stills.prepare(frame)  # spooling encodes a JPEG: not while inference waits on the lock
        if isinstance(waiting, Path) or (isinstance(waiting, Frame) and waiting.spool is not None):
            self.presses.done(press.name)
        with self._frames:
            self.stats.arrive()
            self._stills.add(waiting)
            self._frames.notify()

    # inference (the calling thread) --------------------------------------------------------------------------

    def _next_frame(self, wait_s: float) -> Frame | None:
        with self._frames:
            if not self._stills and not self._continuous:
                self._frames.wait(wait_s)
            if not self._stills:
                return self._continuous.popleft() if self._continuous and not self._stop.is_set() else None
        return self._take_still()

    def _take_still(self) -> Frame | None:
        """The next still, taken out of its queue (and decoded from the spool) only once the store has written what
        it holds: a burst then holds one still result at a time (72 MB at 12 MP) or the next still, never both."""
        self._indicate("capture")
        self._wait_for_store()
        with self._frames:
            return self._stills.popleft() if self._stills else None

    def _infer(self, frame: Frame) -> None:
        timings = {"queue_s": round(max(0.0, time.time() - frame.captured_at), 4)}
        route = self.router.route_still if frame.kind == "still" else self.router.route
        try:
            severity, out = route(frame.pixels, timings)
        except BaseException:
            self.stats.drop("restore_failed")  # the fatal error ends the daemon; the frame is accounted for
            raise
        self.stats.count(severity.label, "in")
        self.stats.time(timings)
        self.stats.processed += 1
        if not self._hand_to_store(Result.of(frame, severity, out, timings, dict(self.decision.readings))):
            self.stats.leave("store_stalled", 1)

    def _wait_for_store(self) -> None:
        """Let the store write what it holds, while the store thread lives and until the stop deadline."""
        store = self._store_thread
        while self._results.unfinished_tasks and store is not None and store.is_alive() and not self._overdue():
            time.sleep(0.02)

    def _hand_to_store(self, result: Result | None) -> bool:
        """Wait for room in the store queue (back-pressure, not a drop) while the store thread lives and, once
        stopping, until the stop deadline; False when the item could not be handed over."""
        store = self._store_thread
        while store is not None and store.is_alive() and not self._overdue():
            try:
                self._results.put(result, timeout=IDLE_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    # status --------------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What `deblurd status` shows (status_report.py shapes it)."""
        return status(stopped=self._stopped, exit_reason=self.exit_reason, started=self._started,
                      interval_s=self.cfg.service.status_interval_s,
                      mode=self.decision.mode if self._continuous_on else "continuous off", source=self.source.name,
                      lens=self.lens, pack=self.pack, stats=self.stats, decision=self.decision,
                      last_result=self._saver.last_result, last_error=self.last_error, disk=self.store.disk_state())

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._talks and not force and now - self._last_progress >= self.cfg.logging.progress_s:
            self._last_progress = now
            log.info("%s", progress_line(self.state()))
        if not force and now - self._last_status < self.cfg.service.status_interval_s:
            return
        self._last_status = now
        state = self.state()
        try:
            write_status(self.cfg.state_file, state, self.store.writer)
        except OSError as exc:
            self._alerts.log(logging.WARNING, "status-file",
                             f"cannot update the status file {self.cfg.state_file}: {exc}")
        self.hooks.status(summary(state))

    # the loop ------------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        limit = self.cfg.pipeline.max_frames
        while not self._stop.is_set():
            if limit is not None and self.stats.processed >= limit:
                self.stop(f"max_frames = {limit} done")
                break
            frame = self._next_frame(min(IDLE_POLL_S, self.cfg.service.status_interval_s))
            if frame is not None:
                self._infer(frame)
                del frame  # a still's pixels are not held while awaiting the next (the stills queue counts them)
            elif self._idle_by_choice:
                self.hooks.watchdog()
            self._report()

    def _shut_down(self, capture: threading.Thread) -> None:
        """Stop capture, restore stills in hand, let the store write what inference finished, all within the
        stop deadline; then write the final status and say goodbye."""
        self.stop()
        capture.join(max(0.0, self._stop_deadline - time.monotonic()))
        with self._frames:
            self.stats.leave("discarded", len(self._continuous))
            self._continuous.clear()
        self.presses.say_left_behind()
        while self._fatal is None and self._stills and not self._overdue():
            if (frame := self._take_still()) is not None:
                self._infer(frame)
            del frame  # not held while the next waits for the store
        if self._stills:
            self.stats.leave("spooled", len(self._stills))
            self._stills.spill()
            log.warning("%d still(s) not restored before the stop deadline: kept in %s and restored at the next "
                        "start", len(self._stills), self.store.spool_dir)
        store = self._store_thread
        if store is not None:
            self._hand_to_store(None)
            store.join(max(0.0, self._stop_deadline - time.monotonic()))
            unwritten = sum(r is not None for r in list(self._results.queue)) + self._saver.writing
            if not store.is_alive():
                pass  # it finished, or died of the fatal error run() raises: what it held is counted as left
            elif not unwritten:
                log.warning("the gallery in %s was still being refreshed at the stop deadline; it is refreshed "
                            "at the next start", self.store.dir)
            else:
                self._stuck = (f"the store thread was still writing to {self.store.dir} {STOP_GRACE_S:.0f} s after "
                               f"the stop ({unwritten} result(s) not written): the disk is stalled; "
                               f"check it (dmesg) before restarting")
                log.error("%s", self._stuck)
                self._error(self._stuck)
            self.stats.leave("store_stalled", unwritten)
        self._stopped = True
        self._report(force=True)
        log.info("%s", stop_line(self.state()))
        self.hooks.stopping()

    def run(self) -> Stats:
        """Run until stop() or pipeline.max_frames; re-raises a fatal error from any thread."""
        return_large_buffers()  # the process is the daemon's now: its threads' freed stills go back (heap.py)
        self.lens.apply(self.source, self.router)
        self.presses.prepare()
        recovered = self._stills.recover()
        if recovered:
            self.stats.arrive(recovered)
            log.info("%d still(s) an earlier run left in %s are restored first", recovered, self.store.spool_dir)
        pressed = len(self.presses.waiting())
        if pressed:
            log.warning("%d press(es) an earlier run accepted but stopped before their still: taking them now",
                        pressed)
        self._saver.gallery.refresh()  # the first reads every sidecar: before frames flow, not in the store's way
        capture = threading.Thread(target=self._guarded("capture", self._capture), name="capture", daemon=True)
        self._store_thread = threading.Thread(target=self._guarded("store", self._saver.run), name="store", daemon=True)
        capture.start()
        self._store_thread.start()
        self.hooks.ready()
        self._report(force=True)  # status.json and systemd's STATUS= from the first moment, not the first interval
        log.info("%s", ready_line(self.store.dir))
        self._indicate("running")
        try:
            self._loop()
        except BaseException as exc:
            self.stop(f"fatal error in the inference thread: {exc}")
            raise
        finally:
            self._shut_down(capture)
        if self._fatal is not None:
            if isinstance(self._fatal, CameraError):
                raise CameraError(f"camera failed: {self._fatal}") from self._fatal
            raise self._fatal
        if self._stuck is not None:
            raise StoreError(self._stuck)
        return self.stats
