"""The output folder: whole files only, a sidecar and an index line per result, retention and a free-space guard.

Layout (what users copy off; README gives the copy recipe):
  <output>/index.jsonl                      one line per result, appended after its files are in place
  <output>/latest.jpg                       the newest result, replaced atomically
  <output>/YYYY-MM-DD/HHMMSS-<id>-input.jpg and -restored.jpg, HHMMSS-<id>.json (the sidecar)

A result's files are written whole under hidden temporary names and renamed; the day folder is fsynced once,
then the index line is appended. Ids are never reused (recovery.py). When the disk fills, the store stops
writing, says so once (then a count), retries every few seconds, and the daemon keeps running.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import numpy as np

from deblurd.atomic import TMP_MARK, AtomicWriter, fsync_dir  # noqa: F401 - AtomicWriter, TMP_MARK re-exported
from deblurd.config import OutputConfig
from deblurd.output.exif import exif_segment, with_exif
from deblurd.frames import Frame, Severity
from deblurd.log_limit import RepeatLimiter
from deblurd.output.recovery import recover
from deblurd.output.retention import MB, FreeSpaceGuard, by_age, by_count, size_on_disk
from deblurd.errors import ExitCode, StoreError

log = logging.getLogger(__name__)

INDEX_NAME = "index.jsonl"
LATEST_NAME = "latest.jpg"
SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)
AGE_CHECK_INTERVAL_S = 60.0
SPACE_RETRY_S = 5.0
"""While the disk is full, try again at most this often (not on every frame)."""
FULL = "disk-full"


def encode_image(rgb: np.ndarray, fmt: str, jpeg_quality: int = 92) -> bytes:
    """RGB uint8 pixels as JPEG or PNG bytes."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(f".{fmt}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as {fmt}")
    return buf.tobytes()


def read_index(output_dir: Path) -> list[dict[str, Any]]:
    """The index's entries; a torn last line (power cut mid-append) is skipped."""
    path = Path(output_dir) / INDEX_NAME
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping a damaged line", path)
    return entries


@dataclass
class Result:
    """One processed frame on its way to disk; restored None means it passed through (sharp)."""

    frame: Frame
    severity: Severity
    restored: Optional[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    readings: dict[str, Any] = field(default_factory=dict)


class ResultStore:
    """Owns the output folder: writes results, keeps the index, applies retention and the free-space floor."""

    def __init__(self, cfg: OutputConfig, writer: Optional[AtomicWriter] = None,
                 clock: Callable[[], float] = time.time, retry_s: float = SPACE_RETRY_S) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.dir)
        self.writer = writer or AtomicWriter()
        self.clock = clock
        self.retry_s = retry_s
        self.entries: list[dict[str, Any]] = []
        self.full_reason: Optional[str] = None
        self.guard = FreeSpaceGuard(cfg.min_free_mb, cfg.min_free_prune_max)
        self._alerts = RepeatLimiter(log)
        self._next_id = 1
        self._retry_at = 0.0
        self._last_age_check = 0.0

    def open(self) -> None:
        """Create the folder, prove it is writable, recover from a crash, and load the index."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.writer.write(self.dir / ".write-test", b"ok")
            (self.dir / ".write-test").unlink()
        except OSError as exc:
            raise StoreError(f"output folder {self.dir} is not writable ({exc.strerror or exc}): choose another "
                             f"folder with --output or output.dir, or fix its permissions") from exc
        self._repair_index()
        self.entries = read_index(self.dir)
        found = recover(self.dir, {int(e.get("id", 0)) for e in self.entries})
        if found.entries:
            self.writer.append_lines(self.dir / INDEX_NAME, [json.dumps(e) for e in found.entries])
            self.entries.extend(found.entries)
            log.warning("recovered %d result(s) whose index line a crash had cut off (ids %s)", len(found.entries),
                        ", ".join(str(e["id"]) for e in found.entries))
        cut_short = [p for p in found.removed if TMP_MARK not in p.name]
        if cut_short:
            log.warning("removed %d file(s) of result(s) a crash had cut short: %s", len(cut_short),
                        ", ".join(p.name for p in cut_short))
        self._next_id = max(found.highest_id, *(int(e.get("id", 0)) for e in self.entries), 0) + 1
        self._warn_if_floor_unreachable()

    def _warn_if_floor_unreachable(self) -> None:
        total = shutil.disk_usage(self.dir).total
        if self.guard.floor_bytes >= total:
            log.warning("config: output.min_free_mb = %d MB is more than the whole disk holding %s (%.1f MB): "
                        "nothing will be written; set output.min_free_mb well below %.1f (0 turns the floor off)",
                        self.cfg.min_free_mb, self.dir, total / MB, total / MB)

    def _repair_index(self) -> None:
        """Cut a torn last line (a crash mid-append) so the next append starts on a fresh line."""
        path = self.dir / INDEX_NAME
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                os.fsync(f.fileno())

    def free_mb(self) -> float:
        return self.free_bytes() / MB

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.dir).free

    def disk_state(self) -> dict[str, Any]:
        """The output disk as `deblurd status` shows it."""
        return {"dir": str(self.dir), "free_mb": round(self.free_mb(), 1), "min_free_mb": self.cfg.min_free_mb,
                "full": self.full_reason, "removed_for_space": self.guard.removed,
                "last_space_removal": self.guard.last}

    def _name(self, entry_id: int, captured_at: float) -> tuple[Path, str]:
        stamp = datetime.fromtimestamp(captured_at)
        return self.dir / stamp.strftime("%Y-%m-%d"), f"{stamp:%H%M%S}-{entry_id:06d}"

    def save(self, result: Result) -> Optional[dict[str, Any]]:
        """Write one result; returns its index entry, or None when the disk is full (nothing partial is left)."""
        try:
            self._apply_retention()
            room = self._has_room()
        except OSError as exc:
            room = self._space_error(exc)
        if not room:
            return None
        frame, entry_id = result.frame, self._next_id
        day, base = self._name(entry_id, frame.captured_at)
        fmt = self.cfg.image_format
        images = {}
        if result.restored is None or self.cfg.save_input:
            images["input"] = frame.pixels
        if result.restored is not None:
            images["restored"] = result.restored
        encoded = {kind: encode_image(pixels, fmt, self.cfg.jpeg_quality) for kind, pixels in images.items()}
        if frame.kind == "still" and fmt == "jpg":
            segment = exif_segment(frame.metadata, frame.captured_at)
            encoded = {kind: with_exif(data, segment) for kind, data in encoded.items()}
        files = {kind: f"{day.name}/{base}-{kind}.{fmt}" for kind in images}
        files["sidecar"] = f"{day.name}/{base}.json"
        entry = {"id": entry_id, "time": round(frame.captured_at, 3), "kind": frame.kind,
                 "severity": result.severity.label, "passthrough": result.restored is None, "files": files}
        sidecar = {**entry, "frame_seq": frame.seq, "captured": datetime.fromtimestamp(frame.captured_at).isoformat(),
                   "size": [int(frame.pixels.shape[1]), int(frame.pixels.shape[0])], "scores": result.severity.scores,
                   "blur_map": result.severity.map, "model": result.severity.model, "timings": result.timings,
                   "lens_position": frame.metadata.get("lens_position"), "source": frame.metadata.get("source"),
                   "camera": {k: v for k, v in frame.metadata.items() if k not in ("lens_position", "source")},
                   "thermal": result.readings}
        sidecar_bytes = json.dumps(sidecar, indent=1, default=str).encode()
        self._next_id += 1  # burnt even if the write fails: a half-written id is never handed out again
        written: list[Path] = []
        try:
            if not day.is_dir():
                day.mkdir()
                fsync_dir(self.dir)
            for kind, data in [*encoded.items(), ("sidecar", sidecar_bytes)]:
                path = self.dir / files[kind]
                self.writer.write(path, data, sync_dir=False)
                written.append(path)
            fsync_dir(day)
            self.writer.append_line(self.dir / INDEX_NAME, json.dumps(entry))
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

    def _prune(self, victims: list[dict[str, Any]], why: str) -> None:
        """Drop entries from the index first (rewritten atomically), then delete their files, sidecar first (a
        kill part-way leaves a sidecar that recovery indexes again, or images it removes: never a dangling line)."""
        gone = {id(e) for e in victims}
        self.entries = [e for e in self.entries if id(e) not in gone]
        self.writer.write(self.dir / INDEX_NAME, "".join(json.dumps(e) + "\n" for e in self.entries).encode())
        days = set()
        for entry in victims:
            files = entry.get("files", {})
            for kind in sorted(files, key=lambda k: k != "sidecar"):
                (self.dir / files[kind]).unlink(missing_ok=True)
                days.add(self.dir / Path(files[kind]).parent)
        for day in days:
            if day.is_dir() and not any(day.iterdir()):
                day.rmdir()
        ids = [e.get("id") for e in victims]
        log.info("removed %d result(s) (ids %s to %s): %s", len(victims), min(ids), max(ids), why)
