"""The output folder: whole files only, a sidecar and an index line per result, retention and a free-space guard.

Layout (what users copy off with rsync):
  <output>/index.jsonl                      one line per result, appended after its files are in place
  <output>/latest.jpg                       the newest result, replaced atomically
  <output>/YYYY-MM-DD/HHMMSS-<id>-input.jpg and -restored.jpg, HHMMSS-<id>.json (the sidecar)

A file appears complete or not at all: AtomicWriter writes a hidden temporary name in the same folder,
fsyncs, renames and fsyncs the folder. When the disk fills, the store stops writing, says so, and resumes
once space returns; the daemon keeps running.
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

from deblurd.config import OutputConfig
from deblurd.frames import Frame, Severity

log = logging.getLogger(__name__)

EX_CANTCREAT = 73
INDEX_NAME = "index.jsonl"
LATEST_NAME = "latest.jpg"
TMP_MARK = ".tmp-"
SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)
AGE_CHECK_INTERVAL_S = 60.0


class StoreError(Exception):
    """The output folder cannot be used; the message names it and the fix."""

    exit_code = EX_CANTCREAT


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicWriter:
    """Writes whole files or nothing, and appends whole lines."""

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def write(self, path: Path, data: bytes) -> None:
        """Temp name in the same folder, flush, fsync, rename over `path`, fsync the folder."""
        tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self._write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)

    def append_line(self, path: Path, line: str) -> None:
        """Append one line in a single write; on failure the file is cut back to where it was."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        try:
            self._write_all(fd, (line.rstrip("\n") + "\n").encode())
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
        finally:
            os.close(fd)


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
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.dir)
        self.writer = writer or AtomicWriter()
        self.clock = clock
        self.entries: list[dict[str, Any]] = []
        self.full_reason: Optional[str] = None
        self.skipped = 0
        self._next_id = 1
        self._last_age_check = 0.0

    def open(self) -> None:
        """Create the folder, prove it is writable, clear temp files a crash left, and load the index."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.writer.write(self.dir / ".write-test", b"ok")
            (self.dir / ".write-test").unlink()
        except OSError as exc:
            raise StoreError(f"output folder {self.dir} is not writable ({exc.strerror or exc}): choose another "
                             f"folder with --output or output.dir, or fix its permissions") from exc
        for tmp in [*self.dir.glob(f".*{TMP_MARK}*"), *self.dir.glob(f"*/.*{TMP_MARK}*")]:
            tmp.unlink(missing_ok=True)
        self._repair_index()
        self.entries = read_index(self.dir)
        self._next_id = max((int(e.get("id", 0)) for e in self.entries), default=0) + 1

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
        return shutil.disk_usage(self.dir).free / 1e6

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
            self.skipped += 1
            return None
        frame, entry_id = result.frame, self._next_id
        day, base = self._name(entry_id, frame.captured_at)
        fmt = self.cfg.image_format
        images = {}
        if result.restored is None or self.cfg.save_input:
            images["input"] = frame.pixels
        if result.restored is not None:
            images["restored"] = result.restored
        files = {kind: f"{day.name}/{base}-{kind}.{fmt}" for kind in images}
        files["sidecar"] = f"{day.name}/{base}.json"
        entry = {"id": entry_id, "time": round(frame.captured_at, 3), "kind": frame.kind,
                 "severity": result.severity.label, "passthrough": result.restored is None, "files": files}
        sidecar = {**entry, "frame_seq": frame.seq, "captured": datetime.fromtimestamp(frame.captured_at).isoformat(),
                   "size": [int(frame.pixels.shape[1]), int(frame.pixels.shape[0])], "scores": result.severity.scores,
                   "model": result.severity.model, "timings": result.timings,
                   "lens_position": frame.metadata.get("lens_position"), "source": frame.metadata.get("source"),
                   "camera": {k: v for k, v in frame.metadata.items() if k not in ("lens_position", "source")},
                   "thermal": result.readings}
        written: list[Path] = []
        encoded = {kind: encode_image(pixels, fmt, self.cfg.jpeg_quality) for kind, pixels in images.items()}
        try:
            day.mkdir(exist_ok=True)
            for kind, data in encoded.items():
                path = self.dir / files[kind]
                self.writer.write(path, data)
                written.append(path)
            path = self.dir / files["sidecar"]
            self.writer.write(path, json.dumps(sidecar, indent=1, default=str).encode())
            written.append(path)
            self.writer.append_line(self.dir / INDEX_NAME, json.dumps(entry))
        except OSError as exc:
            for path in written:
                path.unlink(missing_ok=True)
            self._space_error(exc)
            self.skipped += 1
            return None
        self.entries.append(entry)
        self._next_id += 1
        newest = "restored" if "restored" in images else "input"
        self._replace_latest(encoded[newest] if fmt == "jpg" else encode_image(images[newest], "jpg",
                                                                                self.cfg.jpeg_quality))
        return entry

    def _replace_latest(self, jpeg: bytes) -> None:
        try:
            self.writer.write(self.dir / LATEST_NAME, jpeg)
        except OSError as exc:
            self._space_error(exc)

    def _space_error(self, exc: OSError) -> bool:
        """A full disk pauses writing (returns False); any other write error is fatal."""
        if exc.errno not in SPACE_ERRORS:
            raise StoreError(f"cannot write results to {self.dir} ({exc}): check the disk and its permissions") from exc
        self._set_full(f"the disk is full ({exc.strerror})")
        return False

    def _set_full(self, reason: str) -> None:
        if self.full_reason is None:
            log.error("not writing results to %s: %s; still running, writing resumes once %d MB are free "
                      "(delete or copy off old results, or lower output.min_free_mb)", self.dir, reason,
                      self.cfg.min_free_mb)
        self.full_reason = reason

    def _has_room(self) -> bool:
        """Prune old results until the free-space floor holds; False (and say so) when it cannot."""
        floor = self.cfg.min_free_mb
        while (free := self.free_mb()) < floor:
            victims = self._oldest_first()[:max(1, len(self.entries) // 100)]
            if not victims:
                self._set_full(f"free space {free:.0f} MB is below output.min_free_mb = {floor}")
                return False
            self._prune(victims, "free space")
        if self.full_reason is not None:
            log.info("space is back on %s (%.0f MB free): writing results again", self.dir, self.free_mb())
            self.full_reason = None
        return True

    def _oldest_first(self) -> list[dict[str, Any]]:
        """Deletion order: continuous results oldest first, then stills oldest first."""
        return sorted(self.entries, key=lambda e: (e.get("kind") == "still", e.get("time", 0)))

    def _apply_retention(self) -> None:
        now = self.clock()
        if self.cfg.keep_days and now - self._last_age_check >= AGE_CHECK_INTERVAL_S:
            self._last_age_check = now
            cutoff = now - self.cfg.keep_days * 86400
            old = [e for e in self.entries if e.get("time", 0) < cutoff]
            if old:
                self._prune(old, f"older than {self.cfg.keep_days} days")
        limit = self.cfg.max_results
        if limit and len(self.entries) >= limit:
            excess = len(self.entries) - limit + 1 + limit // 20
            self._prune(self._oldest_first()[:excess], f"more than {limit} results")

    def _prune(self, victims: list[dict[str, Any]], why: str) -> None:
        """Drop entries from the index first (rewritten atomically), then delete their files."""
        gone = {id(e) for e in victims}
        self.entries = [e for e in self.entries if id(e) not in gone]
        self.writer.write(self.dir / INDEX_NAME, "".join(json.dumps(e) + "\n" for e in self.entries).encode())
        days = set()
        for entry in victims:
            for rel in entry.get("files", {}).values():
                (self.dir / rel).unlink(missing_ok=True)
                days.add(self.dir / Path(rel).parent)
        for day in days:
            if day.is_dir() and not any(day.iterdir()):
                day.rmdir()
        log.info("removed %d old result(s): %s", len(victims), why)
