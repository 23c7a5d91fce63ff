"""Whole files or nothing: a temporary name in the same folder, flushed, fsynced and renamed into place.

A result is several files in one day folder; fsyncing that folder once after all of them are renamed (instead
of once per file) makes their names durable with one call, which is what keeps an SD card's write count down.
"""

from __future__ import annotations

import os
from pathlib import Path

TMP_MARK = ".tmp-"
"""Temporary names are hidden (`.<name>.tmp-<pid>`) so copies that exclude `.*` never pick them up."""


def fsync_dir(path: Path) -> None:
    """Make the names created or renamed in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


class AtomicWriter:
    """Writes whole files or nothing, and appends whole lines."""

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def write(self, path: Path, data: bytes, sync_dir: bool = True) -> None:
        """Temp name in the same folder, flush, fsync, rename over `path`; fsync the folder unless the caller
        batches that (sync_dir=False, then fsync_dir once for the whole group)."""
        tmp = temp_name(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            self._write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        if sync_dir:
            fsync_dir(path.parent)

    def link(self, source: Path, path: Path) -> None:
        """Point `path` at the already durable `source` (a hard link renamed into place): no data is written."""
        tmp = temp_name(path)
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, path)

    def append_line(self, path: Path, line: str) -> None:
        """Append one line in a single write; on failure the file is cut back to where it was."""
        self.append_lines(path, [line])

    def append_lines(self, path: Path, lines: list[str]) -> None:
        """Append whole lines in a single write and fsync; on failure the file is cut back to where it was."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)  # never through a link
        size = os.fstat(fd).st_size
        try:
            self._write_all(fd, "".join(line.rstrip("\n") + "\n" for line in lines).encode())
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
        finally:
            os.close(fd)
