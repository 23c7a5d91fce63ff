"""Every error a command can end with, and the exit code it ends with: one root, one table.

`cli` catches DeblurdError and exits with the subclass's `exit_code`; the README's exit-code table is tested
against EXIT_CODES. The codes follow sysexits.h so that systemd and scripts can tell a bad config (78, not
restarted by the unit) from a missing pack or an unwritable folder.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of every `deblurd` command."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    DATAERR = 65
    NOINPUT = 66
    UNAVAILABLE = 69
    CANTCREAT = 73
    CONFIG = 78
    INTERRUPTED = 130


class DeblurdError(Exception):
    """An error that ends a command with one line on stderr (the message names the cause and the fix)."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(DeblurdError):
    """A config that cannot be used; the message names every bad key, its value and what is allowed."""

    exit_code = ExitCode.CONFIG


class PackError(DeblurdError):
    """A model pack that cannot be used; the message names the file and how to fix it."""

    exit_code = ExitCode.NOINPUT


class StoreError(DeblurdError):
    """The output folder cannot be used; the message names it and the fix."""

    exit_code = ExitCode.CANTCREAT


class CameraError(DeblurdError):
    """The camera cannot deliver frames; the message says why and what to do."""

    exit_code = ExitCode.UNAVAILABLE


class CaptureTimeout(CameraError):
    """No frame arrived in time; the source is recovering (reopening) and a later read may succeed."""


class NoFocusMotor(CameraError):
    """Pairs need a lens that moves; a fixed-focus camera gives the same blur at every position."""


class InputError(DeblurdError):
    """One input image that cannot be processed; the others still are."""

    exit_code = ExitCode.DATAERR


class LensProfileError(DeblurdError):
    """A lens profile that cannot be read; the message names the file and the fix."""

    exit_code = ExitCode.DATAERR


class CalibrationError(DeblurdError):
    """Pairs that cannot be calibrated from; the message names the file or the fix."""

    exit_code = ExitCode.DATAERR


EXIT_CODES: dict[int, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILURE: "any other failure (a thread's fatal error, a result that could not be stored)",
    ExitCode.USAGE: "a wrong command line",
    ExitCode.DATAERR: "input data that cannot be used (an image, lens pairs, a lens profile)",
    ExitCode.NOINPUT: "a missing or broken model pack, or missing input (no pairs, no index)",
    ExitCode.UNAVAILABLE: "no camera, or a camera that cannot do what is asked (a fixed-focus lens)",
    ExitCode.CANTCREAT: "the output folder cannot be written",
    ExitCode.CONFIG: "a bad config (systemd does not restart the unit)",
    ExitCode.INTERRUPTED: "stopped by Ctrl-C",
}
"""What each exit code means: `deblurd --help` and the README's table come from here."""
