"""sd_notify read back from a real AF_UNIX datagram socket bound as NOTIFY_SOCKET, and the logging choice."""

from __future__ import annotations

import logging
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deblurd.config import LoggingConfig
from deblurd.daemon.service import SystemdNotifier, default_sender, send_datagram, setup_logging, watchdog_interval_s

try:
    from systemd import daemon as systemd_daemon
except ImportError:
    systemd_daemon = None

SENDERS = [pytest.param(send_datagram, id="datagram"),
           pytest.param(systemd_daemon.notify if systemd_daemon else None, id="systemd-python",
                        marks=pytest.mark.skipif(systemd_daemon is None, reason="systemd-python not installed"))]


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


@pytest.mark.parametrize("send", SENDERS)
def test_notifier_lifecycle_messages(notify_socket: socket.socket, send) -> None:
    n = SystemdNotifier(send=send)
    assert n.ready()
    assert received(notify_socket) == "READY=1"
    assert n.status("restoring frame 12\n(semi)")
    assert received(notify_socket) == "STATUS=restoring frame 12 (semi)"
    assert not n.watchdog()  # no WatchdogSec armed: nothing to ping
    assert n.stopping()
    assert received(notify_socket) == "STOPPING=1"


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"deblurd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert send_datagram("READY=1")
        assert received(sock) == "READY=1"


def test_no_socket_is_a_quiet_no_op(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert SystemdNotifier(send=send_datagram).ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert send_datagram("READY=1") is False


def test_watchdog_is_rate_limited_to_a_quarter_of_watchdog_sec(notify_socket: socket.socket,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    assert watchdog_interval_s() == 20.0
    now = [0.0]
    n = SystemdNotifier(send=send_datagram, clock=lambda: now[0])
    assert n.watchdog()
    now[0] = 4.9
    assert not n.watchdog()
    now[0] = 5.0
    assert n.watchdog()
    assert [received(notify_socket), received(notify_socket)] == ["WATCHDOG=1", "WATCHDOG=1"]
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval_s() is None  # armed for another process


def test_default_sender_prefers_systemd_python() -> None:
    expected = systemd_daemon.notify if systemd_daemon else send_datagram
    assert default_sender() is expected


@pytest.fixture
def clean_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


def test_logging_goes_to_stderr_outside_systemd(monkeypatch: pytest.MonkeyPatch, clean_root_logger) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    handler = setup_logging(LoggingConfig(level="DEBUG"))
    assert isinstance(handler, logging.StreamHandler)
    assert logging.getLogger().handlers == [handler] and logging.getLogger().level == logging.DEBUG
    assert "asctime" in handler.formatter._fmt


def test_logging_goes_to_journal_under_systemd(monkeypatch: pytest.MonkeyPatch, clean_root_logger) -> None:
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")
    handler = setup_logging(LoggingConfig())
    if systemd_daemon is None:
        assert isinstance(handler, logging.StreamHandler) and "asctime" not in handler.formatter._fmt
    else:
        assert type(handler).__name__ == "JournalHandler"
    monkeypatch.delenv("INVOCATION_ID")
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert isinstance(setup_logging(LoggingConfig(journald="off")), logging.StreamHandler)


def test_without_systemd_python_falls_back_to_datagram_and_stderr(monkeypatch: pytest.MonkeyPatch,
                                                                  clean_root_logger,
                                                                  capsys: pytest.CaptureFixture) -> None:
    for name in ("systemd", "systemd.daemon", "systemd.journal"):
        monkeypatch.setitem(sys.modules, name, None)  # importing them now raises ImportError
    assert default_sender() is send_datagram
    handler = setup_logging(LoggingConfig(journald="on"))
    assert isinstance(handler, logging.StreamHandler)
    assert "systemd-python is not importable" in capsys.readouterr().err
