"""ask the running daemon for a full-resolution still, as the capture button does

`deblurd still` writes a press record into the output folder's `.stills-spool/` (durable before it returns, so a
crash of the daemon cannot lose it) and sends SIGUSR1 to the daemon that holds the folder's lock, which takes the
still at once (or within a second, if the signal is not allowed). The daemon then treats it exactly like a
button press (deblurd.daemon.presses). No socket: the folder and a signal are the whole interface.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from deblurd.config import load_config
from deblurd.daemon.presses import Press, record_press
from deblurd.errors import DeblurdError, ExitCode, StoreError
from deblurd.output.layout import DAY_FORMAT, SPOOL_DIR, BadRecord, UnsafePath, read_index, read_sidecar
from deblurd.output.lock import holder

EXAMPLES = """examples:
  deblurd still                           one still from the daemon writing to output.dir (the service)
  deblurd still --output /tmp/out         from a `deblurd run --output /tmp/out` started by hand
  deblurd still --wait                    wait (up to 60 s) until it is stored, then print its files
  sudo -u deblurd deblurd still --wait    over SSH on the Pi, as the service's user
"""
WAIT_POLL_S = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config file (default /etc/deblurd/deblurd.toml)")
    parser.add_argument("--output", type=Path, metavar="DIR", help="the --output folder the daemon was started with")
    parser.add_argument("--wait", type=float, nargs="?", const=60.0, metavar="SECONDS",
                        help="wait until the still is stored (default 60 s) and print its files")


def run(args: argparse.Namespace) -> int:
    """Ask the daemon for a still; exit 69 when no daemon writes to the folder (nothing is requested then)."""
    out = Path(args.output) if args.output is not None else load_config(args.config).output.dir
    pid = holder(out)
    if pid is None:
        raise DeblurdError(f"no deblurd is running on {out}, so nothing was requested: start it (`sudo systemctl "
                           f"start deblurd`, or `deblurd run --output {out}`), or name the folder it writes to with "
                           f"--output", ExitCode.UNAVAILABLE)
    press = _record(out)
    woken = _wake(pid)
    when = "" if woken else ", which sees it within a second"
    print(f"still requested from deblurd (pid {pid or 'starting'}){when}: "
          f"it will appear in {out / datetime.now().strftime(DAY_FORMAT)}/ as HHMMSS-<id>-input.jpg (and "
          f"-restored.jpg), listed in {out / 'index.html'}#kind=still; press {press.name}")
    if args.wait is None:
        return 0
    files = _wait_for(out, press, args.wait)
    if files is None:
        print(f"deblurd: the still is not stored after {args.wait:g} s; its press waits in {out / SPOOL_DIR} "
              f"and the daemon stores it (see `deblurd status`)", file=sys.stderr)
        return ExitCode.FAILURE
    print("\n".join(str(out / rel) for rel in files))
    return 0


def _record(out: Path) -> Press:
    """The press, durable in the folder's spool; a clear error when the folder refuses it."""
    try:
        return record_press(out, "command")
    except UnsafePath as exc:
        raise StoreError(f"{out / SPOOL_DIR} is not a plain folder ({exc}): deblurd never writes through links; "
                         f"remove it and restart the daemon") from None
    except PermissionError as exc:
        raise StoreError(f"cannot write the request into {out / SPOOL_DIR} ({exc.strerror}): run it as the "
                         f"daemon's user (`sudo -u deblurd deblurd still`) or as root") from None
    except OSError as exc:
        raise StoreError(f"cannot write the request into {out / SPOOL_DIR} ({exc.strerror or exc}): free space "
                         f"on that disk, or press the capture button (the daemon holds a press in memory)") from None


def _wake(pid: int) -> bool:
    """SIGUSR1 to the daemon; False when it may not be signalled (it polls the spool anyway)."""
    if not pid:
        return False  # it holds the lock but has not written its pid yet: it reads the spool as it starts
    try:
        os.kill(pid, signal.SIGUSR1)
    except PermissionError:
        return False
    except ProcessLookupError:
        raise DeblurdError(f"the daemon (pid {pid}) ended just now; the request stays in its spool and the next "
                           f"start takes the still", ExitCode.UNAVAILABLE) from None
    return True


def _wait_for(out: Path, press: Press, timeout: float) -> list[str] | None:
    """The stored files (relative to `out`) of the still taken for `press`, or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    checked: set[int] = set()
    while time.monotonic() < deadline:
        for entry in read_index(out):
            if entry.kind != "still" or entry.id in checked:
                continue
            checked.add(entry.id)
            try:
                sidecar = read_sidecar(out, entry)
            except (OSError, ValueError, BadRecord, UnsafePath):
                continue
            if sidecar.camera.get("press") == press.name:
                return list(entry.images().values())
        time.sleep(WAIT_POLL_S)
    return None
