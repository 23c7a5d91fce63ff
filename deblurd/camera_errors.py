"""What can go wrong with a camera, and the exit code each failure ends a command with.

Both frame sources (camera.py, picamera_source.py) and their users import from here, so neither camera module
needs the other.
"""

from __future__ import annotations

EX_FAILURE = 1
EX_UNAVAILABLE = 69
"""sysexits.h: a service the command needs (here a moving lens) is not available."""


class CameraError(Exception):
    """The camera cannot deliver frames; the message says why and what to do."""

    exit_code = EX_FAILURE


class CaptureTimeout(CameraError):
    """No frame arrived in time; the source is recovering (reopening) and a later read may succeed."""


class NoFocusMotor(CameraError):
    """Pairs need a lens that moves; a fixed-focus camera gives the same blur at every position."""

    exit_code = EX_UNAVAILABLE
