"""The output folder's layout: every name in it, the index line and the sidecar as typed records, and the one
check that keeps a path read back from the folder inside it.

  <output>/index.jsonl                       one IndexEntry per line, appended after the result's files are in place
  <output>/latest.jpg                        the newest restored frame (a hard link, replaced by rename, never read)
  <output>/status.json                       what `deblurd status` shows
  <output>/.lock                             held (flock) by the one daemon writing here; holds its pid
  <output>/.stills-spool/                    presses waiting to be stored
  <output>/index.html, gallery/              the static gallery (gallery.py)
  <output>/YYYY-MM-DD/HHMMSS-<id>-<kind>.jpg kind: input | restored
  <output>/YYYY-MM-DD/HHMMSS-<id>.json       the Sidecar: the IndexEntry's fields and the rest of what is known

The folder is a trust boundary: anyone who can write into it (or hands over a copy) controls what is read back.
So a record's `files` must name files of that very result in a day folder, `confined()` refuses any path that
is absolute, climbs out or passes through a symbolic link, and a refused entry is logged once and left alone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

log = logging.getLogger(__name__)

INDEX_NAME = "index.jsonl"
LATEST_NAME = "latest.jpg"
STATUS_NAME = "status.json"
LOCK_NAME = ".lock"
SPOOL_DIR = ".stills-spool"
WRITE_TEST_NAME = ".write-test"
GALLERY_INDEX = "index.html"
GALLERY_DIR = "gallery"
GALLERY_DATA_DIR = "data"
SIDECAR = "sidecar"
"""The `files` key of a result's sidecar; the others are image kinds (IMAGE_KINDS)."""
IMAGE_KINDS = ("input", "restored")
IMAGE_FORMATS = ("jpg", "png")
DAY_FORMAT = "%Y-%m-%d"

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RESULT_FILE = re.compile(r"^\d{6}-(?P<id>\d+)(?:-(?P<kind>[a-z]+))?\.(?P<ext>jpg|png|json)$")
_DAY_PAGE = re.compile(r"^\d{4}-\d{2}-\d{2}\.html$")
_DATA_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}-\d+\.js$")


class UnsafePath(ValueError):
    """A path read from the output folder that is absolute, leaves the folder or passes through a link."""


class BadRecord(ValueError):
    """An index line or sidecar that is not a result this layout describes."""


# names ---------------------------------------------------------------------------------------------------------

def day_name(t: float) -> str:
    """The day folder of a result captured at `t` (local time)."""
    return datetime.fromtimestamp(t).strftime(DAY_FORMAT)


def is_day_name(name: str) -> bool:
    return bool(_DAY.match(name))


def result_files(result_id: int, t: float, kinds: list[str], fmt: str) -> dict[str, str]:
    """A result's files relative to the folder: each image kind as `fmt`, and the sidecar."""
    stamp = datetime.fromtimestamp(t)
    base = f"{stamp.strftime(DAY_FORMAT)}/{stamp:%H%M%S}-{result_id:06d}"
    return {**{kind: f"{base}-{kind}.{fmt}" for kind in kinds}, SIDECAR: f"{base}.json"}


@dataclass(frozen=True)
class ResultName:
    """A day folder's file name, parsed: the result id, the image kind (None for the sidecar) and the extension."""

    id: int
    kind: str | None
    ext: str

    @property
    def is_sidecar(self) -> bool:
        return self.ext == "json"


def parse_result_name(name: str) -> ResultName | None:
    """The parts of a result's file name, or None for any other name."""
    match = _RESULT_FILE.match(name)
    if match is None or (match["ext"] == "json") != (match["kind"] is None):
        return None
    return ResultName(int(match["id"]), match["kind"], match["ext"])


def day_page_name(day: str) -> str:
    return f"{day}.html"


def is_day_page(name: str) -> bool:
    return bool(_DAY_PAGE.match(name))


def data_file_name(day: str, chunk: int) -> str:
    return f"{day}-{chunk:04d}.js"


def is_data_file(name: str) -> bool:
    return bool(_DATA_FILE.match(name))


# the trust boundary --------------------------------------------------------------------------------------------

_refused: set[tuple[str, str]] = set()


def refuse(folder: Path, what: str, why: str) -> None:
    """Log a refused entry of `folder` once per process (it is left alone, and found again at every pass)."""
    key = (str(folder), what)
    if key not in _refused:
        _refused.add(key)
        log.warning("%s: %s left alone: %s (deblurd never follows links or paths out of its output folder)",
                    folder, what, why)


def confined(root: Path, rel: Any) -> Path:
    """`root / rel` for a relative path read from the folder; UnsafePath when it is not a string, is absolute,
    climbs out (`..`), or passes through a symbolic link (the last part included) that could lead out."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise UnsafePath(f"{rel!r} is not a path in the folder")
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or ".." in parts:
        raise UnsafePath(f"{rel!r} is absolute or climbs out of the folder")
    path = Path(root)
    for part in parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break
        if stat.S_ISLNK(mode):
            raise UnsafePath(f"{rel!r} passes through the symbolic link {path}")
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise UnsafePath(f"{rel!r} resolves outside the folder")
    return path


def is_plain_dir(path: Path) -> bool:
    """A folder itself, not a link to one (lstat)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def day_dirs(root: Path) -> list[Path]:
    """The folder's day folders, oldest first; one that is a link is refused (logged once) and left alone."""
    days = []
    for path in Path(root).iterdir():
        if not is_day_name(path.name):
            continue
        if is_plain_dir(path):
            days.append(path)
        elif is_link(path):
            refuse(root, f"day folder {path.name}", "it is a symbolic link")
    return sorted(days)


def read_text_nofollow(path: Path) -> str:
    """A file's text, never through a symbolic link at its last part (OSError ELOOP then)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return f.read().decode("utf-8")


# records -------------------------------------------------------------------------------------------------------

def _files(result_id: int, value: Any) -> dict[str, str]:
    """A record's `files`, each a file of this result in a day folder (so no record names another's files)."""
    if not isinstance(value, dict) or SIDECAR not in value:
        raise BadRecord("its files are not a mapping with a sidecar")
    for kind, rel in value.items():
        parts = PurePosixPath(rel).parts if isinstance(rel, str) else ()
        name = parse_result_name(parts[1]) if len(parts) == 2 and is_day_name(parts[0]) else None
        if name is None or name.id != result_id or (name.kind or SIDECAR) != kind:
            raise BadRecord(f"files[{kind!r}] = {rel!r} is not result {result_id}'s {kind} in a day folder")
    return dict(value)


@dataclass(frozen=True)
class IndexEntry:
    """One result as index.jsonl lists it; the sidecar repeats these fields, so a lost line can be rebuilt."""

    id: int
    time: float
    kind: str
    """"continuous" or "still"."""
    severity: str
    passthrough: bool
    files: dict[str, str]
    """Kind (input, restored, sidecar) → path relative to the folder, forward slashes."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time, "kind": self.kind, "severity": self.severity,
                "passthrough": self.passthrough, "files": dict(self.files)}

    def line(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def parse(cls, data: Any) -> IndexEntry:
        """The entry a JSON object describes; BadRecord when it is not one (a hand edit, a crafted line)."""
        try:
            result_id = data["id"]
            if not isinstance(result_id, int) or isinstance(result_id, bool) or result_id < 1:
                raise BadRecord(f"id {result_id!r} is not a positive integer")
            when = data["time"]
            if not isinstance(when, (int, float)) or isinstance(when, bool):
                raise BadRecord(f"time {when!r} is not a number")
            return cls(result_id, float(when), str(data.get("kind", "continuous")), str(data.get("severity", "")),
                       bool(data.get("passthrough", False)), _files(result_id, data["files"]))
        except (KeyError, TypeError) as exc:
            raise BadRecord(f"not a result ({type(exc).__name__}: {exc})") from None

    def images(self) -> dict[str, str]:
        return {kind: rel for kind, rel in self.files.items() if kind != SIDECAR}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Sidecar:
    """A result's sidecar (`HHMMSS-<id>.json`): its index entry and the rest of what is known about it."""

    entry: IndexEntry
    frame_seq: int | None = None
    captured: str | None = None
    size: list[int] | None = None
    scores: dict[str, float] = field(default_factory=dict)
    blur_map: dict[str, Any] | None = None
    model: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    lens_position: float | None = None
    source: str | None = None
    camera: dict[str, Any] = field(default_factory=dict)
    thermal: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "frame_seq": self.frame_seq, "captured": self.captured, "size": self.size,
                "scores": self.scores, "blur_map": self.blur_map, "model": self.model, "timings": self.timings,
                "lens_position": self.lens_position, "source": self.source, "camera": self.camera,
                "thermal": self.thermal}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), indent=1, default=str).encode()

    @classmethod
    def parse(cls, data: Any) -> Sidecar:
        """A sidecar's JSON object; the entry must be valid, any other field that is malformed reads as unknown."""
        if not isinstance(data, dict):
            raise BadRecord("a sidecar is not a JSON object")
        lens = data.get("lens_position")
        return cls(IndexEntry.parse(data), data.get("frame_seq"), data.get("captured"), data.get("size"),
                   _dict(data.get("scores")), data.get("blur_map") if isinstance(data.get("blur_map"), dict) else None,
                   data.get("model"), _dict(data.get("timings")),
                   float(lens) if isinstance(lens, (int, float)) and not isinstance(lens, bool) else None,
                   data.get("source"), _dict(data.get("camera")), _dict(data.get("thermal")))


def read_sidecar(root: Path, entry: IndexEntry) -> Sidecar:
    """The sidecar an entry names, read without following links; OSError, UnsafePath or BadRecord otherwise.
    A sidecar that describes another result than its entry is a BadRecord."""
    sidecar = Sidecar.parse(json.loads(read_text_nofollow(confined(root, entry.files[SIDECAR]))))
    if sidecar.entry.id != entry.id:
        raise BadRecord(f"{entry.files[SIDECAR]} describes result {sidecar.entry.id}, not {entry.id}")
    return sidecar


def read_index(root: Path) -> list[IndexEntry]:
    """The index's results, never read through a link. A torn last line (power cut mid-append) and a line that
    is not a result are skipped, and said once."""
    path = Path(root) / INDEX_NAME
    try:
        text = read_text_nofollow(path)
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entries.append(IndexEntry.parse(json.loads(line)))
        except json.JSONDecodeError:
            log.warning("%s: skipping a damaged line (%d)", path, number)
        except BadRecord as exc:
            refuse(root, f"{INDEX_NAME} line {number}", str(exc))
    return entries
