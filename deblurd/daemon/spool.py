"""Button stills on disk while they wait their turn: the encoded form a queued still takes (QueuedStill) and the
`.stills-spool/` folder in the output folder (SpoolFolder) that makes every accepted press durable."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deblurd.atomic import TMP_MARK, AtomicWriter
from deblurd.frames import Frame
from deblurd.image_io import MAX_IMAGE_PIXELS, bounded_size
from deblurd.log_limit import printable
from deblurd.output.layout import is_link, is_plain_dir, refuse

log = logging.getLogger(__name__)

_STARTED = time.time() - 2.0
"""About when this process started (this module is imported before any spool is written), less FAT's 2 s steps."""


QUEUED_JPEG_QUALITY = 97
"""Quality (4:4:4, no chroma subsampling) of a queued still's JPEG: about 8 MB for 12 MP, 1 grey level RMS from
the captured pixels, 0.1-0.2 s to encode; the stored input is a JPEG of quality 92 anyway."""
REJECTED_DIR = "rejected"
"""Inside the spool: stills that can never be restored (over the pixel limit, undecodable), each with a reason."""


@dataclass(frozen=True)
class QueuedStill:
    """A still waiting its turn as a JPEG (a fifth of the bytes or less), with the rest of its Frame."""

    jpeg: bytes
    seq: int
    captured_at: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def pack(cls, frame: Frame) -> QueuedStill:
        """Encoded in the channel order held (no 36 MB colour-converted copy at 12 MP): with 4:4:4 sampling the
        channels are treated alike, and unpack decodes them back in the same order."""
        ok, buf = cv2.imencode(".jpg", frame.pixels,
                               [cv2.IMWRITE_JPEG_QUALITY, QUEUED_JPEG_QUALITY,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
        if not ok:
            raise ValueError(f"could not encode a queued still of shape {frame.pixels.shape}")
        return cls(buf.tobytes(), frame.seq, frame.captured_at, dict(frame.metadata))

    def unpack(self) -> Frame:
        rgb = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if rgb is None:
            raise ValueError(f"could not decode queued still {self.seq}")
        return Frame(rgb, self.seq, self.captured_at, "still", self.metadata)


class SpoolFolder:
    """Button stills waiting their turn as files: a JPEG as QueuedStill encodes it and a JSON of the rest of its
    Frame, each written whole. A still spooled survives a stop whose deadline passes, a crash and a full disk: the
    next start restores it, and only a stored result releases it (so a crash between the two stores it twice rather
    than never)."""

    def __init__(self, folder: Path, writer: AtomicWriter | None = None, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.folder = Path(folder)
        self.writer = writer or AtomicWriter()
        self.max_pixels = max_pixels

    def write(self, still: QueuedStill, name: str | None = None) -> Path:
        """Spool an encoded still, under its press's name when given; the JSON is written last, so it marks a
        complete still. OSError (a full disk, say) leaves no file behind."""
        self.folder.mkdir(parents=True, exist_ok=True)
        jpeg = self.folder / f"{name or f'{still.captured_at:017.6f}-{still.seq:08d}'}.jpg"
        meta = {"seq": still.seq, "captured_at": still.captured_at, "metadata": still.metadata}
        try:
            self.writer.write(jpeg, still.jpeg)
            self.writer.write(jpeg.with_suffix(".json"), json.dumps(meta, default=str).encode("utf-8"))
        except OSError:
            self.release(jpeg)
            raise
        return jpeg

    def read(self, jpeg: Path) -> Frame:
        """The spooled still as a Frame that remembers its file; bounded in pixels from its header before it is
        decoded (InputError, a ValueError, over max_pixels or without a readable header)."""
        meta = json.loads(jpeg.with_suffix(".json").read_text(encoding="utf-8"))
        data = jpeg.read_bytes()
        bounded_size(data, self.max_pixels, jpeg.name)
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if rgb is None:
            raise ValueError(f"{printable(jpeg)} is not a readable JPEG")
        return Frame(rgb, int(meta["seq"]), float(meta["captured_at"]), "still", meta.get("metadata", {}), jpeg)

    def reject(self, jpeg: Path, reason: str) -> Path | None:
        """Move a still that can never be restored (and its JSON) to rejected/, beside <name>.reason.txt, so that
        the next start does not read it again; the reason file, or None when the move failed (it stays put)."""
        rejected = self.folder / REJECTED_DIR
        try:
            rejected.mkdir(exist_ok=True)
            if not is_plain_dir(rejected):
                raise NotADirectoryError(f"{rejected} is not a plain folder (a link is never followed)")
            for path in (jpeg, jpeg.with_suffix(".json")):
                if path.exists():
                    os.replace(path, rejected / path.name)
            note = rejected / f"{jpeg.stem}.reason.txt"
            self.writer.write(note, (reason + "\n").encode("utf-8"))
        except OSError as exc:
            log.error("cannot move the unrestorable still %s to %s (%s): it stays in the spool",
                      printable(jpeg), printable(rejected), exc)
            return None
        log.error("spooled still %s cannot be restored (%s): moved to %s", printable(jpeg.name), reason,
                  printable(rejected))
        return note

    def waiting(self) -> list[Path]:
        """Spooled stills complete on disk (JPEG and JSON), oldest first; links are refused (and said once)."""
        if not is_plain_dir(self.folder):
            return []
        found = []
        for jpeg in sorted(self.folder.glob("*.jpg")):
            if is_link(jpeg) or is_link(jpeg.with_suffix(".json")):
                refuse(self.folder, jpeg.name, "a spooled still that is a symbolic link")
            elif jpeg.with_suffix(".json").is_file():
                found.append(jpeg)
        return found

    @staticmethod
    def release(jpeg: Path) -> None:
        """Forget a spooled still whose result is stored: the JPEG first, so that a crash in between leaves a JSON
        without pixels (which repair() removes), never a JPEG that looks like a still cut short."""
        jpeg.unlink(missing_ok=True)
        jpeg.with_suffix(".json").unlink(missing_ok=True)

    def repair(self) -> None:
        """Settle what a crash between two writes left, before the spool is read: a JPEG without its JSON (killed
        between the two) gets its JSON rebuilt from what is known, or is moved to rejected/ when it is not a
        JPEG; a JSON without its JPEG (a release cut short) is removed; temp files of writers that have gone are
        removed. Each is logged; links are left alone (and said)."""
        if not is_plain_dir(self.folder):
            return
        for path in sorted(self.folder.iterdir()):
            if is_link(path):
                refuse(self.folder, path.name, "a symbolic link in the spool")
            elif TMP_MARK in path.name:
                self._remove_orphan_temp(path)
            elif path.suffix == ".json" and not os.path.lexists(path.with_suffix(".jpg")):
                path.unlink()
                log.info("removed %s: its still was stored and released when a crash came", printable(path))
            elif path.suffix == ".jpg" and not os.path.lexists(path.with_suffix(".json")):
                self._adopt(path)

    @staticmethod
    def _remove_orphan_temp(path: Path) -> None:
        """A temp file whose writer has gone (a crash mid-write); one that a live process writes is left to it,
        this one included when the file is younger than this process (a press recorded while the spool is
        repaired at the start; an older one with this pid is an earlier run's that had the same pid)."""
        pid = path.name.rpartition(TMP_MARK)[2]
        if pid.isdigit() and _alive(int(pid)):
            try:
                if int(pid) != os.getpid() or os.lstat(path).st_mtime >= _STARTED:
                    return
            except FileNotFoundError:
                return
        path.unlink(missing_ok=True)

    def _adopt(self, jpeg: Path) -> None:
        """A JPEG whose JSON a crash prevented: it was written whole (atomic), so rebuild the JSON from what is
        known (the file's time as the capture time, its press from its name); not a JPEG: quarantine it."""
        fd = os.open(jpeg, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            head = f.read(3)
            captured_at = os.fstat(f.fileno()).st_mtime
        if head != b"\xff\xd8\xff":
            self.reject(jpeg, "it is not a JPEG and has no metadata")
            return
        press = jpeg.with_suffix(".press")
        metadata = {"press": jpeg.stem} if press.is_file() else {}
        meta = {"seq": 0, "captured_at": captured_at, "metadata": {**metadata, "spool_rebuilt": True}}
        self.writer.write(jpeg.with_suffix(".json"), json.dumps(meta).encode("utf-8"))
        log.warning("spooled still %s had no metadata (a crash between its two writes): rebuilt it (capture time "
                    "from the file, sequence number unknown)", printable(jpeg))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
