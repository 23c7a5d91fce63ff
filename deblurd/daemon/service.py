"""systemd integration: sd_notify messages (READY, STATUS, WATCHDOG, STOPPING) and journald logging.

sd_notify goes through systemd-python (`systemd.daemon.notify`) when it is importable, as on the Pi where
install.sh puts python3-systemd in the venv's view. Without it (a dev machine, CI) the same protocol is sent
by hand: one datagram of "KEY=value" lines to the AF_UNIX socket named by $NOTIFY_SOCKET, where a leading
"@" means the abstract namespace. Outside systemd $NOTIFY_SOCKET is unset and every message is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable

from deblurd.config import LoggingConfig

log = logging.getLogger(__name__)

Sender = Callable[[str], bool]


def send_datagram(message: str) -> bool:
    """The sd_notify protocol without libsystemd; True when a datagram was sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False  # unset, or a transport (vsock) this daemon never runs under
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        return True
    except OSError as exc:
        log.debug("sd_notify %r to %s failed: %s", message, address, exc)
        return False


def default_sender() -> Sender:
    try:
        from systemd import daemon  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return send_datagram
    return daemon.notify


def watchdog_interval_s() -> float | None:
    """WatchdogSec= as seen by this process (WATCHDOG_USEC, for our PID), or None when no watchdog is armed."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000
    except ValueError:
        return None


class SystemdNotifier:
    """Tells systemd how the daemon is doing; the pipeline's ServiceHooks. watchdog() may be called per frame,
    from any thread: this is the one place that rate-limits it, to four pings per WatchdogSec (none when no
    watchdog is armed), so a stalled pipeline (no frames, no calls) is what lets systemd restart the service."""

    def __init__(self, send: Sender | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send or default_sender()
        self._clock = clock
        interval = watchdog_interval_s()
        self._watchdog_every = interval / 4 if interval else None
        self._last_watchdog: float | None = None
        self._lock = threading.Lock()

    def ready(self) -> bool:
        return self._send("READY=1")

    def status(self, text: str) -> bool:
        return self._send("STATUS=" + " ".join(text.split()))

    def watchdog(self) -> bool:
        if self._watchdog_every is None:
            return False
        with self._lock:
            now = self._clock()
            if self._last_watchdog is not None and now - self._last_watchdog < self._watchdog_every:
                return False
            self._last_watchdog = now
        return self._send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self._send("STOPPING=1")


def started_by_systemd() -> bool:
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"))


def on_a_terminal() -> bool:
    """Whether someone reads the log as it comes (a terminal, or not started by systemd), so the daemon says how
    it is doing every logging.progress_s; under systemd the STATUS= line and `deblurd status` show that."""
    return sys.stderr.isatty() or not started_by_systemd()


THIRD_PARTY_LOGGERS = ("PIL", "tensorflow", "absl", "h5py", "matplotlib", "jax", "keras", "urllib3", "asyncio",
                       "gpiozero", "picamera2")
"""Libraries whose debug lines would flood `-v` (Pillow logs every PNG chunk): kept at WARNING."""


def quiet_third_party() -> None:
    """Keep the libraries' loggers at WARNING whatever the root level, unless a level was set on one (asked for:
    `logging.getLogger("PIL").setLevel(logging.DEBUG)`)."""
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    handler = JournalHandler(SYSLOG_IDENTIFIER="deblurd")
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


def setup_logging(cfg: LoggingConfig) -> logging.Handler:
    """Route the root logger to journald (structured, with priorities) when running as a service, else stderr.

    Under systemd without systemd-python, stderr still reaches the journal, so the line drops its timestamp.
    """
    under_systemd = started_by_systemd()
    want_journal = cfg.journald == "on" or (cfg.journald == "auto" and under_systemd)
    handler = _journal_handler() if want_journal else None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)s %(name)s: %(message)s"
        handler.setFormatter(logging.Formatter(fmt if under_systemd else "%(asctime)s " + fmt))
    root = logging.getLogger()
    for old in root.handlers[:]:  # replaces basicConfig's handler too, so no line is logged twice
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(cfg.level)
    quiet_third_party()
    if want_journal and isinstance(handler, logging.StreamHandler):
        log.warning("logging.journald = %s but systemd-python is not importable; logging to stderr "
                    "(install python3-systemd, or pip install systemd-python)", cfg.journald)
    return handler
