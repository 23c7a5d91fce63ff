"""The output folder: whole files only, a sidecar and an index line per result, retention and a free-space guard.

The folder's names and records are layout.py's. A result's files are written whole under hidden temporary
names and renamed; the day folder is fsynced once, then the index line is appended. Ids are never reused
(recovery.py). When the disk fills, the store stops writing, says so once (then a count), retries every few
seconds, and the daemon keeps running. The store holds the folder's lock (lock.py) from open() to close(), refuses a
folder whose index or spool is a link, and removes only files that layout.confined() keeps inside the folder.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deblurd.atomic import TMP_MARK, AtomicWriter, fsync_dir  # noqa: F401 - AtomicWriter, TMP_MARK re-exported
from deblurd.config import OutputConfig
from deblurd.errors import StoreError
from deblurd.frames import Frame, Severity
from deblurd.log_limit import RepeatLimiter
from deblurd.output.exif import exif_segment, with_exif
from deblurd.output.layout import (
    INDEX_NAME,
    LATEST_NAME,
    SIDECAR,
    SPOOL_DIR,
    WRITE_TEST_NAME,
    IndexEntry,
    Sidecar,
    UnsafePath,
    confined,
    is_link,
    is_plain_dir,
    refuse,
    result_files,
)
from deblurd.output.layout import read_index as read_entries
from deblurd.output.lock import OutputLock
from deblurd.output.recovery import recover
from deblurd.output.retention import MB, FreeSpaceGuard, by_age, by_count, size_on_disk

log = logging.getLogger(__name__)

SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)
AGE_CHECK_INTERVAL_S = 60.0
SPACE_RETRY_S = 5.0
"""While the disk is full, try again at most this often (not on every frame)."""
FULL = "disk-full"


SWAP_ROWS = 64
"""Rows whose red and blue are swapped at a time (cv2 copies a whole source that is also the destination)."""


def encode_image(rgb: np.ndarray, fmt: str, jpeg_quality: int = 92, in_place: bool = False) -> bytes:
    """RGB uint8 pixels as JPEG or PNG bytes. in_place: the encoder's BGR order is made by swapping the channels of
    `rgb` itself, a band of rows at a time, and swapped back (bit for bit) instead of in a whole copy (36 MB at
    12 MP), when `rgb` is one writable block: only for pixels that no other thread reads meanwhile."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    if not (in_place and rgb.flags.c_contiguous and rgb.flags.writeable):
        ok, buf = cv2.imencode(f".{fmt}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    else:
        _swap_red_blue(rgb)
        try:
            ok, buf = cv2.imencode(f".{fmt}", rgb, params)
        finally:
            _swap_red_blue(rgb)
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as {fmt}")
    return buf.tobytes()


def _swap_red_blue(pixels: np.ndarray) -> None:
    for y in range(0, pixels.shape[0], SWAP_ROWS):
        band = pixels[y:y + SWAP_ROWS]
        cv2.cvtColor(band, cv2.COLOR_RGB2BGR, dst=band)


def read_index(output_dir: Path) -> list[dict[str, Any]]:
    """The index's results as plain JSON objects (what tools and tests compare); layout.read_index types them."""
    return [entry.to_json() for entry in read_entries(Path(output_dir))]


@dataclass
class Result:
    """One processed frame on its way to disk. What its route did (severity) decides its files: a pass-through
    is stored as its input only (restored None), a restored frame as its restoration (and its input when
    output.save_input)."""

    frame: Frame
    severity: Severity
    restored: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)
    readings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity.passthrough != (self.restored is None):
            raise ValueError(f"a {self.severity.label} result (restored {self.severity.restored or 'nothing'}) "
                             f"must {'not ' if self.severity.passthrough else ''}carry restored pixels")

    @classmethod
    def of(cls, frame: Frame, severity: Severity, out: np.ndarray, timings: dict[str, float],
           readings: dict[str, Any]) -> Result:
        """The result of a route's output `out`: its pixels kept only when the route restored something."""
        return cls(frame, severity, None if severity.passthrough else out, timings, readings)


class ResultStore:
    """Owns the output folder: writes results, keeps the index, applies retention and the free-space floor."""

    def __init__(self, cfg: OutputConfig, writer: AtomicWriter | None = None,
                 clock: Callable[[], float] = time.time, retry_s: float = SPACE_RETRY_S) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.dir)
        self.writer = writer or AtomicWriter()
        self.clock = clock
        self.retry_s = retry_s
        self.entries: list[IndexEntry] = []
        self.full_reason: str | None = None
        self.guard = FreeSpaceGuard(cfg.min_free_mb, cfg.min_free_prune_max)
        self._alerts = RepeatLimiter(log)
        self._next_id = 1
        self._retry_at = 0.0
        self._last_age_check = 0.0
        self.lock = OutputLock(self.dir)

    def __enter__(self) -> ResultStore:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def spool_dir(self) -> Path:
        """Where presses wait to be stored (checked by open(): a plain folder, never a link)."""
        return self.dir / SPOOL_DIR

    def open(self) -> None:
        """Create the folder, prove it is writable, take its lock (StoreError when another daemon holds it), refuse
        links where the store's own files go, recover from a crash, and load the index."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.writer.write(self.dir / WRITE_TEST_NAME, b"ok")
            (self.dir / WRITE_TEST_NAME).unlink()
        except OSError as exc:
            raise StoreError(f"output folder {self.dir} is not writable ({exc.strerror or exc}): choose another "
                             f"folder with --output or output.dir, or fix its permissions") from exc
        self.lock.acquire()
        try:
            self._load()
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        """Release the folder's lock (the process's end releases it too)."""
        self.lock.release()

    def _load(self) -> None:
        for name in (INDEX_NAME, SPOOL_DIR):
            if is_link(self.dir / name):
                raise StoreError(f"{self.dir / name} is a symbolic link: deblurd never follows links in its output "
                                 f"folder (they could lead anywhere); remove it, or choose another folder")
        if (self.dir / SPOOL_DIR).exists() and not is_plain_dir(self.dir / SPOOL_DIR):
            raise StoreError(f"{self.dir / SPOOL_DIR} is not a folder: remove it, deblurd spools presses there")
        self._repair_index()
        self.entries = read_entries(self.dir)
        found = recover(self.dir, {e.id for e in self.entries})
        if found.entries:
            self.writer.append_lines(self.dir / INDEX_NAME, [e.line() for e in found.entries])
            self.entries.extend(found.entries)
            log.warning("recovered %d result(s) whose index line a crash had cut off (ids %s)", len(found.entries),
                        ", ".join(str(e.id) for e in found.entries))
        cut_short = [p for p in found.removed if TMP_MARK not in p.name]
        if cut_short:
            log.warning("removed %d file(s) of result(s) a crash had cut short: %s", len(cut_short),
                        ", ".join(p.name for p in cut_short))
        self._next_id = max(found.highest_id, *(e.id for e in self.entries), 0) + 1
        self._warn_if_floor_unreachable()

    def _warn_if_floor_unreachable(self) -> None:
        total = shutil.disk_usage(self.dir).total
        if self.guard.floor_bytes >= total:
            log.warning("config: output.min_free_mb = %d MB is more than the whole disk holding %s (%.1f MB): "
                        "nothing will be written; set output.min_free_mb well below %.1f (0 turns the floor off)",
                        self.cfg.min_free_mb, self.dir, total / MB, total / MB)

    def _repair_index(self) -> None:
        """Cut a torn last line (a crash mid-append) so the next append starts on a fresh line."""
        try:
            fd = os.open(self.dir / INDEX_NAME, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        with os.fdopen(fd, "r+b") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
                os.fsync(f.fileno())

    def free_mb(self) -> float:
        return self.free_bytes() / MB

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.dir).free

    def disk_state(self) -> dict[str, Any]:
        """The output disk as `deblurd status` shows it (free_mb None when the folder has gone)."""
        try:
            free_mb: float | None = round(self.free_mb(), 1)
        except OSError:
            free_mb = None
        return {"dir": str(self.dir), "free_mb": free_mb, "min_free_mb": self.cfg.min_free_mb,
                "full": self.full_reason, "removed_for_space": self.guard.removed,
                "last_space_removal": self.guard.last}

    def _day_folder(self, day: Path) -> None:
        """Make the day folder; one that is there must be a plain folder (a link could lead anywhere)."""
        if is_plain_dir(day):
            return
        if os.path.lexists(day):
            raise StoreError(f"{day} is not a plain folder (a symbolic link or a file): deblurd never writes through "
                             f"links in its output folder; remove it, or choose another folder")
        day.mkdir()
        fsync_dir(self.dir)

    def save(self, result: Result) -> IndexEntry | None:
        """Write one result; returns its index entry, or None when the disk is full (nothing partial is left)."""
        try:
            self._apply_retention()
            room = self._has_room()
        except OSError as exc:
            room = self._space_error(exc)
        if not room:
            return None
        frame, entry_id = result.frame, self._next_id
        fmt = self.cfg.image_format
        images = {}
        passthrough = result.severity.passthrough
        if passthrough or self.cfg.save_input:
            images["input"] = frame.pixels
        if result.restored is not None:
            images["restored"] = result.restored
        # a still's pixels are its result's alone by now (a full-resolution copy for the encoder would be 36 MB)
        encoded = {kind: encode_image(pixels, fmt, self.cfg.jpeg_quality, in_place=frame.kind == "still")
                   for kind, pixels in images.items()}
        if frame.kind == "still" and fmt == "jpg":
            segment = exif_segment(frame.metadata, frame.captured_at)
            encoded = {kind: with_exif(data, segment) for kind, data in encoded.items()}
        files = result_files(entry_id, frame.captured_at, list(images), fmt)
        entry = IndexEntry(entry_id, round(frame.captured_at, 3), frame.kind, result.severity.label, passthrough,
                           files)
        sidecar = Sidecar(entry, frame.seq, datetime.fromtimestamp(frame.captured_at).isoformat(),
                          [int(frame.pixels.shape[1]), int(frame.pixels.shape[0])], result.severity.scores,
                          result.severity.map, result.severity.model, result.timings,
                          frame.metadata.get("lens_position"), frame.metadata.get("source"),
                          {k: v for k, v in frame.metadata.items() if k not in ("lens_position", "source")},
                          result.readings)
        self._next_id += 1  # burnt even if the write fails: a half-written id is never handed out again
        day = (self.dir / files[SIDECAR]).parent
        written: list[Path] = []
        try:
            self._day_folder(day)
            for kind, data in [*encoded.items(), (SIDECAR, sidecar.encode())]:
                path = self.dir / files[kind]
                self.writer.write(path, data, sync_dir=False)
                written.append(path)
            fsync_dir(day)
            self.writer.append_line(self.dir / INDEX_NAME, entry.line())
        except OSError as exc:
            for path in reversed(written):
                path.unlink(missing_ok=True)
            self._space_error(exc)
            return None
        self.entries.append(entry)
        if self.full_reason is not None:
            self.full_reason = None
            self._alerts.clear(FULL, f"writing results to {self.dir} again ({self.free_mb():.0f} MB free)")
        newest = "restored" if "restored" in images else "input"
        self._replace_latest(self.dir / files[newest], images[newest])
        return entry

    def _replace_latest(self, newest: Path, pixels: np.ndarray) -> None:
        """latest.jpg: a hard link to the newest JPEG (no extra write), else a re-encoded copy."""
        try:
            if newest.suffix == ".jpg":
                try:
                    self.writer.link(newest, self.dir / LATEST_NAME)
                    return
                except OSError as exc:
                    if exc.errno in SPACE_ERRORS:
                        raise
            self.writer.write(self.dir / LATEST_NAME, encode_image(pixels, "jpg", self.cfg.jpeg_quality),
                              sync_dir=False)
        except OSError as exc:
            self._space_error(exc)

    def _space_error(self, exc: OSError) -> bool:
        """A full disk pauses writing (returns False); any other write error is fatal."""
        if exc.errno not in SPACE_ERRORS:
            raise StoreError(f"cannot write results to {self.dir} ({exc}): check the disk and its permissions") from exc
        try:
            fs = os.statvfs(self.dir)
            detail = f"{fs.f_bavail * fs.f_frsize / MB:.1f} MB and {fs.f_favail} inodes free"
        except OSError:
            detail = "free space unknown"
        self._set_full(f"the disk is full ({exc.strerror}; {detail}): delete or copy off old results, or set "
                       f"output.keep_days or output.max_results")
        return False

    def _set_full(self, reason: str) -> None:
        self.full_reason = reason
        self._retry_at = time.monotonic() + self.retry_s
        self._alerts.log(logging.ERROR, FULL, f"not writing results to {self.dir}: {reason}; still running, "
                                              f"retrying every {self.retry_s:.0f} s")

    def _has_room(self) -> bool:
        """Restore the free-space floor if the guard may; False (and say why) when writing must wait."""
        if self.full_reason is not None and time.monotonic() < self._retry_at:
            self._alerts.log(logging.ERROR, FULL, f"not writing results to {self.dir}: {self.full_reason}")
            return False
        victims, freed, refusal = self.guard.plan(self.entries, self.free_bytes(), self.clock(),
                                                  lambda entry: size_on_disk(self.dir, entry))
        if refusal is not None:
            self._set_full(refusal)
            return False
        if victims:
            self._prune(victims, f"free space was below output.min_free_mb = {self.cfg.min_free_mb} MB "
                                 f"(freed {freed / MB:.1f} MB)")
            self.guard.note(victims, freed, self.clock())
        return True

    def _apply_retention(self) -> None:
        now = self.clock()
        if self.cfg.keep_days and now - self._last_age_check >= AGE_CHECK_INTERVAL_S:
            self._last_age_check = now
            old = by_age(self.entries, now, self.cfg.keep_days)
            if old:
                self._prune(old, f"older than output.keep_days = {self.cfg.keep_days}")
        if self.cfg.max_results:
            excess = by_count(self.entries, now, self.cfg.max_results)
            if excess:
                self._prune(excess, f"more than output.max_results = {self.cfg.max_results}")

    def _prune(self, victims: list[IndexEntry], why: str) -> None:
        """Drop entries from the index first (rewritten atomically), then delete their files, sidecar first (a
        kill part-way leaves a sidecar that recovery indexes again, or images it removes: never a dangling line).
        A file whose path would leave the folder or pass through a link is left alone (and said once)."""
        gone = {id(e) for e in victims}
        self.entries = [e for e in self.entries if id(e) not in gone]
        self.writer.write(self.dir / INDEX_NAME, "".join(e.line() + "\n" for e in self.entries).encode())
        days = set()
        for entry in victims:
            for kind in sorted(entry.files, key=lambda k: k != SIDECAR):
                try:
                    path = confined(self.dir, entry.files[kind])
                except UnsafePath as exc:
                    refuse(self.dir, f"result {entry.id}'s {kind}", str(exc))
                    continue
                path.unlink(missing_ok=True)
                days.add(path.parent)
        for day in days:
            if day.parent == self.dir and is_plain_dir(day) and not any(day.iterdir()):
                day.rmdir()
        ids = [e.id for e in victims]
        log.info("removed %d result(s) (ids %s to %s): %s", len(victims), min(ids), max(ids), why)
