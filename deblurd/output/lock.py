"""One daemon per output folder: an exclusive `flock` on `<output>/.lock`, which holds the holder's pid.

Two daemons on one folder hand out the same result ids and overwrite each other's files, so the store takes the
lock when it opens and keeps it for the process's life; the kernel drops it when the process ends, however it
ends, so a stale lock file never blocks a restart. `flock` locks belong to an open file, so one process that opens
the same folder twice (a test restarting a store) shares one lock rather than locking itself out.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from deblurd.errors import StoreError
from deblurd.output.layout import LOCK_NAME

_held: dict[tuple[int, int], list[int]] = {}
"""(st_dev, st_ino) of a lock file this process holds → [fd, users]."""
_guard = threading.Lock()


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open the lock file {path} ({exc.strerror or exc}): it must be a plain file "
                         f"the daemon's user may write; remove it if it is a link") from exc


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class OutputLock:
    """The folder's lock, held from acquire() until release() or the end of the process."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._key: tuple[int, int] | None = None

    def acquire(self) -> None:
        """Take the lock, or StoreError (exit 73) naming the pid of the daemon that holds it."""
        fd = _open(self.path, os.O_RDWR | os.O_CREAT)
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with _guard:
            if key in _held:
                os.close(fd)
                _held[key][1] += 1
                self._key = key
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise StoreError(f"output folder {self.path.parent} is in use by another deblurd (pid "
                                 f"{pid if pid is not None else 'unknown'}): stop it first (`systemctl stop deblurd`), "
                                 f"or give this one another folder with --output") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _held[key] = [fd, 1]
            self._key = key

    def release(self) -> None:
        """Let go (the last user in this process closes the file, which drops the lock). The file stays."""
        with _guard:
            if self._key is None or self._key not in _held:
                return
            entry = _held[self._key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[self._key]
                os.close(entry[0])
            self._key = None


def holder(folder: Path) -> int | None:
    """The pid of the process holding `folder`'s lock (0 in the instant before it writes its pid), or None when
    no process holds it or there is no lock file. Read-only: works for any user who may read the file."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in _held:
            return os.getpid()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        return None
    finally:
        os.close(fd)
