"""The daemon loop, in one place: source → classify → route → restore → store.

Three threads, data flowing one way. The capture thread reads the source and fills two queues: continuous
frames (bounded; the oldest is dropped, and counted, when inference falls behind) and button stills (never
dropped; a request is refused only when the still queue is full). The calling thread classifies and restores.
The store thread writes results, so disk I/O overlaps with inference; its bounded queue holds inference back
rather than dropping a processed frame. The governor paces capture; the notifier and indicator hear about
progress. All three are hooks with do-nothing defaults here; the real
ones (thermal, systemd, GPIO) live in their own modules.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

from deblurd.camera import FrameSource
from deblurd.camera_errors import CameraError, CaptureTimeout
from deblurd.config import Config
from deblurd.frames import Frame
from deblurd.inference import ModelPack
from deblurd.router import Router
from deblurd.status import write_status
from deblurd.store import Result, ResultStore

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
"""How often a paused capture thread re-asks the governor; keeps idle CPU near zero."""
WATCHDOG_MIN_INTERVAL_S = 1.0
FPS_WINDOW = 30


class Decision(Protocol):
    mode: str
    factor: float
    readings: dict[str, Any]


class Governor(Protocol):
    """Decides the pace: mode normal | slow | pause | critical, a frame-rate factor, and the readings behind it."""

    def decide(self) -> Decision: ...


class Notifier(Protocol):
    """Service manager messages (sd_notify in the real one)."""

    def ready(self) -> None: ...

    def status(self, text: str) -> None: ...

    def watchdog(self) -> None: ...

    def stopping(self) -> None: ...


class Indicator(Protocol):
    """A status light: running, capture, paused, error."""

    def set_state(self, name: str) -> None: ...


@dataclass(frozen=True)
class SteadyDecision:
    mode: str = "normal"
    factor: float = 1.0
    readings: dict[str, Any] = field(default_factory=dict)


class NullGovernor:
    def decide(self) -> Decision:
        return SteadyDecision()


class NullNotifier:
    def ready(self) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def watchdog(self) -> None:
        pass

    def stopping(self) -> None:
        pass


class NullIndicator:
    def set_state(self, name: str) -> None:
        pass


@dataclass
class Stats:
    """Counters and per-stage timings shown by `deblurd status`; updated from several threads."""

    frames_in: int = 0
    frames_out: int = 0
    processed: int = 0
    routes: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    stage_totals: dict[str, float] = field(default_factory=dict)
    stored_at: deque[float] = field(default_factory=lambda: deque(maxlen=FPS_WINDOW))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, route: str, what: str) -> None:
        with self.lock:
            counts = self.routes.setdefault(route, {"in": 0, "out": 0, "dropped": 0})
            counts[what] += 1

    def drop(self, reason: str) -> None:
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def time(self, timings: dict[str, float]) -> None:
        with self.lock:
            for stage, seconds in timings.items():
                self.stage_totals[stage] = self.stage_totals.get(stage, 0.0) + seconds

    def fps(self) -> float:
        with self.lock:
            span = self.stored_at[-1] - self.stored_at[0] if len(self.stored_at) > 1 else 0.0
            return (len(self.stored_at) - 1) / span if span > 0 else 0.0


class Pipeline:
    """Wires a source, a model pack and a store; `run()` blocks until stopped or max_frames are done."""

    def __init__(self, source: FrameSource, pack: ModelPack, store: ResultStore, cfg: Config,
                 governor: Optional[Governor] = None, notifier: Optional[Notifier] = None,
                 indicator: Optional[Indicator] = None, router: Optional[Router] = None) -> None:
        self.source, self.pack, self.store, self.cfg = source, pack, store, cfg
        self.router = router or Router(pack)
        self.governor = governor or NullGovernor()
        self.notifier = notifier or NullNotifier()
        self.indicator = indicator or NullIndicator()
        self.stats = Stats()
        self.decision: Decision = SteadyDecision()
        self.last_result: Optional[dict[str, Any]] = None
        self.last_error: Optional[dict[str, Any]] = None
        self.lens_position: Optional[float] = None
        self._continuous: deque[Frame] = deque()
        self._stills: deque[Frame] = deque()
        self._still_requests = 0
        self._lock = threading.Lock()
        self._frames = threading.Condition(self._lock)
        self._results: queue.Queue[Optional[Result]] = queue.Queue(maxsize=cfg.pipeline.queue_size)
        self._hook_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._continuous_on = True
        self._idle_by_choice = False
        self._fatal: Optional[BaseException] = None
        self._indicator_state = ""
        self._started = time.time()
        self._last_watchdog = 0.0
        self._last_status = 0.0

    def request_still(self) -> bool:
        """Ask for one full-resolution still (thread-safe); False, counted as a drop, when the still queue is full."""
        with self._lock:
            if self._still_requests + len(self._stills) >= self.cfg.pipeline.still_queue_size:
                self.stats.drop("still_queue_full")
                return False
            self._still_requests += 1
        self._wake.set()
        return True

    def set_continuous(self, enabled: bool) -> None:
        """Pause or resume continuous capture; stills are still taken."""
        self._continuous_on = enabled
        log.info("continuous capture %s", "on" if enabled else "off")
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish the frame in hand and return (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def _indicate(self, state: str) -> None:
        with self._hook_lock:
            if state != self._indicator_state:
                self._indicator_state = state
                self.indicator.set_state(state)

    def _error(self, message: str) -> None:
        self.last_error = {"time": time.time(), "message": message}
        self._indicate("error")

    def _watchdog(self) -> None:
        """Ping only after real work (or a deliberate pause), at most once a second: a stalled camera stops the pings."""
        with self._hook_lock:
            now = time.monotonic()
            if now - self._last_watchdog >= WATCHDOG_MIN_INTERVAL_S:
                self._last_watchdog = now
                self.notifier.watchdog()

    def _guarded(self, work: Callable[[], None]) -> Callable[[], None]:
        """A thread body whose fatal error is handed to run(), which re-raises it in the calling thread."""
        def body() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                self._fatal = self._fatal or exc
                self.stop()
                with self._frames:
                    self._frames.notify_all()
        return body

    # capture thread ------------------------------------------------------------------------------------------

    def _take_still_request(self) -> bool:
        with self._lock:
            if self._still_requests == 0:
                return False
            self._still_requests -= 1
            return True

    def _capture(self) -> None:
        timeout = self.cfg.camera.capture_timeout_s
        next_due = time.monotonic()
        while not self._stop.is_set():
            self.decision = decision = self.governor.decide()
            if self._take_still_request():
                self._capture_still(decision.mode)
                continue
            self._idle_by_choice = not self._continuous_on or decision.mode in ("pause", "critical")
            if self._idle_by_choice:
                self._indicate("paused")
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
                continue
            delay = next_due - time.monotonic()
            if delay > 0 and self._wake.wait(delay):
                self._wake.clear()
                continue
            next_due = max(next_due, time.monotonic() - 1.0) + 1.0 / (self.cfg.camera.fps * max(decision.factor, 1e-3))
            try:
                frame = self.source.read(timeout)
            except CaptureTimeout as exc:
                self._error(str(exc))
                continue
            self._indicate("running")
            with self._frames:
                self.stats.frames_in += 1
                if len(self._continuous) >= self.cfg.pipeline.queue_size:
                    self._continuous.popleft()
                    self.stats.drop("queue_full")
                self._continuous.append(frame)
                self._frames.notify()

    def _capture_still(self, mode: str) -> None:
        if mode == "critical":
            log.warning("still refused: the Pi is critically hot (%s)", self.decision.readings)
            self.stats.drop("critical")
            return
        try:
            frame = self.source.capture_still()
        except CaptureTimeout as exc:
            self._error(str(exc))
            with self._lock:
                self._still_requests += 1
            return
        with self._frames:
            self.stats.frames_in += 1
            self._stills.append(frame)
            self._frames.notify()

    # inference (the calling thread) --------------------------------------------------------------------------

    def _next_frame(self, wait_s: float) -> Optional[Frame]:
        with self._frames:
            if not self._stills and not self._continuous:
                self._frames.wait(wait_s)
            if self._stills:
                return self._stills.popleft()
            if self._continuous and not self._stop.is_set():
                return self._continuous.popleft()
            return None

    def _infer(self, frame: Frame) -> None:
        timings = {"queue_s": round(max(0.0, time.time() - frame.captured_at), 4)}
        if frame.kind == "still":
            self._indicate("capture")
        severity, out = self.router.route(frame.pixels, timings)
        self.stats.count(severity.label, "in")
        self.stats.time(timings)
        self.stats.processed += 1
        self._hand_to_store(Result(frame, severity, None if severity.label == "sharp" else out, timings,
                                   dict(self.decision.readings)))

    def _hand_to_store(self, result: Optional[Result]) -> None:
        """Wait for room in the store queue (back-pressure, not a drop), unless the store thread has failed."""
        while self._fatal is None:
            try:
                self._results.put(result, timeout=IDLE_POLL_S)
                return
            except queue.Full:
                continue

    # store thread --------------------------------------------------------------------------------------------

    def _store(self) -> None:
        while (result := self._results.get()) is not None:
            t0 = time.perf_counter()
            entry = self.store.save(result)
            self.stats.time({"store_s": time.perf_counter() - t0})
            label = result.severity.label
            if entry is None:
                self.stats.count(label, "dropped")
                self.stats.drop("disk_full")
                self._error(f"not writing results: {self.store.full_reason}")
            else:
                self.stats.count(label, "out")
                with self.stats.lock:
                    self.stats.frames_out += 1
                    self.stats.stored_at.append(time.monotonic())
                self.last_result = {**entry, "scores": result.severity.scores}
                self._indicate("running")
            self._watchdog()

    # status --------------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What `deblurd status` shows."""
        now = time.time()
        n = max(self.stats.processed, 1)
        with self.stats.lock:
            counters = {"frames_in": self.stats.frames_in, "frames_out": self.stats.frames_out,
                        "routes": {k: dict(v) for k, v in self.stats.routes.items()}, "dropped": dict(self.stats.dropped),
                        "mean_timings_s": {k: round(v / n, 4) for k, v in self.stats.stage_totals.items()}}
        return {"pid": os.getpid(), "started": self._started, "updated": now, "uptime_s": round(now - self._started, 1),
                "interval_s": self.cfg.service.status_interval_s,
                "mode": self.decision.mode if self._continuous_on else "continuous off",
                "source": self.source.name, "lens_position": self.lens_position,
                "models": f"{self.pack.manifest.name} v{self.pack.manifest.version} {self.pack.precision} "
                          f"({self.pack.runtime})",
                "fps": round(self.stats.fps(), 3), **counters, "readings": dict(self.decision.readings),
                "last_result": self.last_result, "last_error": self.last_error,
                "disk": {"dir": str(self.store.dir), "free_mb": round(self.store.free_mb(), 1),
                         "full": self.store.full_reason}}

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < self.cfg.service.status_interval_s:
            return
        self._last_status = now
        state = self.state()
        try:
            write_status(self.cfg.state_file, state, self.store.writer)
        except OSError as exc:
            log.warning("cannot update the status file %s: %s", self.cfg.state_file, exc)
        temperature = next((f"{v:.1f} °C" for k, v in state["readings"].items()
                            if "temp" in k and isinstance(v, (int, float))), "temperature n/a")
        self.notifier.status(f"{state['mode']}, {state['fps']:.1f} fps, {temperature}, "
                             f"{state['frames_out']} stored, {sum(state['dropped'].values())} dropped")

    # the loop ------------------------------------------------------------------------------------------------

    def _set_lens(self) -> None:
        lens = self.cfg.lens
        if lens.mode == "manual":
            self.lens_position = self.source.set_lens_position(lens.position_dioptres)
        elif lens.mode == "auto":
            self.lens_position = self.source.autofocus()

    def _shut_down(self, capture: threading.Thread, store: threading.Thread) -> None:
        """Stop capture, let the store write what inference finished, then report and say goodbye."""
        self.stop()
        capture.join(self.cfg.camera.capture_timeout_s * 4)
        self._hand_to_store(None)
        store.join()
        self._report(force=True)
        self.notifier.stopping()

    def run(self) -> Stats:
        """Run until stop() or pipeline.max_frames; re-raises a fatal capture or store error."""
        self._set_lens()
        capture = threading.Thread(target=self._guarded(self._capture), name="capture", daemon=True)
        store = threading.Thread(target=self._guarded(self._store), name="store", daemon=True)
        capture.start()
        store.start()
        self.notifier.ready()
        self._indicate("running")
        limit = self.cfg.pipeline.max_frames
        try:
            while not self._stop.is_set() and (limit is None or self.stats.processed < limit):
                frame = self._next_frame(min(IDLE_POLL_S, self.cfg.service.status_interval_s))
                if frame is not None:
                    self._infer(frame)
                elif self._idle_by_choice:
                    self._watchdog()
                self._report()
            self.stop()
            capture.join(self.cfg.camera.capture_timeout_s * 4)
            while self._fatal is None and self._stills:
                self._infer(self._stills.popleft())
        finally:
            self._shut_down(capture, store)
        if self._fatal is not None:
            if isinstance(self._fatal, CameraError):
                raise CameraError(f"camera failed: {self._fatal}") from self._fatal
            raise self._fatal
        return self.stats
