"""Freed pixel buffers go back to the system at once, so the daemon's resident memory is what is alive, not the sum
of what each thread once held.

glibc serves a request above its mmap threshold with its own mapping, returned when freed, and a smaller one from
the calling thread's arena, which keeps it when freed. The threshold starts at 128 KB but rises to the size of each
mapped block freed (up to 32 MB), so after the first 12 MP still the 11-14 MB planes of the next (luminance,
corrections, JPEGs) come from arenas, and the inference, store and capture threads each keep their own highs: with 8
queued stills that was about 25 MB of the peak. Setting the threshold fixes it at one value and stops the rise.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""mallopt's parameter number for the threshold (glibc's malloc.h)."""
MMAP_THRESHOLD_BYTES = 1 << 20
"""Blocks of 1 MB and more are mapped and unmapped: every full-resolution plane and block buffer of a still; a
256-pixel tile's planes (256 KB) stay in the arenas, where reuse is cheap."""


def return_large_buffers(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix the C library's mmap threshold at `threshold` bytes for this process (all its threads); False where the
    C library has no such setting (not glibc), which changes nothing else."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    if not done:
        log.debug("the C library did not take mmap threshold %d: freed buffers may stay in its arenas", threshold)
    return done
