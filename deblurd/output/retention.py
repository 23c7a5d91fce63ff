"""Which results to remove: retention by age and by count, and the free-space floor.

Age and count retention remove continuous results oldest first, then stills oldest first. The free-space floor
is a guard, not a retention rule: it removes only continuous results, oldest first, only as many as it takes to
get back above the floor, at most `output.min_free_prune_max` in one run of the daemon, and nothing at all when
even that would not reach the floor (another program filling the disk must not cost the whole history).
No rule removes a result younger than MIN_PRUNE_AGE_S, so a copy taken with the README's recipe finds every
file its index names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deblurd.output.layout import IndexEntry as Entry
from deblurd.output.layout import UnsafePath, confined

MIN_PRUNE_AGE_S = 300.0
MB = 1_000_000


def oldest_first(entries: list[Entry]) -> list[Entry]:
    """Deletion order for age and count retention: continuous results oldest first, then stills oldest first."""
    return sorted(entries, key=lambda e: (e.kind == "still", e.time))


def _old_enough(entry: Entry, now: float) -> bool:
    return entry.time <= now - MIN_PRUNE_AGE_S


def by_age(entries: list[Entry], now: float, keep_days: int) -> list[Entry]:
    cutoff = now - keep_days * 86400
    return [e for e in entries if e.time < cutoff]


def by_count(entries: list[Entry], now: float, limit: int) -> list[Entry]:
    """Enough of the oldest results to make room for the next one, plus 5 % of the limit so pruning is not
    done on every save."""
    if len(entries) < limit:
        return []
    excess = len(entries) - limit + 1 + limit // 20
    return [e for e in oldest_first(entries) if _old_enough(e, now)][:excess]


def size_on_disk(out: Path, entry: Entry) -> int:
    """Bytes freed by deleting a result's files (allocated blocks, so small files count what they really use); a
    file outside the folder or behind a link counts nothing (it is not removed)."""
    total = 0
    for rel in entry.files.values():
        try:
            total += os.lstat(confined(out, rel)).st_blocks * 512
        except (OSError, UnsafePath):
            pass
    return total


class FreeSpaceGuard:
    """Keeps `floor_mb` free by removing continuous results, within a per-run cap, or refuses with the reason."""

    def __init__(self, floor_mb: int, prune_max: int) -> None:
        self.floor_bytes = floor_mb * MB
        self.prune_max = prune_max
        self.removed = 0
        self.last: dict[str, Any] | None = None

    def plan(self, entries: list[Entry], free_bytes: int, now: float,
             size_of: Callable[[Entry], int]) -> tuple[list[Entry], int, str | None]:
        """The fewest oldest continuous results whose removal restores the floor and the bytes that frees,
        or ([], 0, why not)."""
        deficit = self.floor_bytes - free_bytes
        if deficit <= 0:
            return [], 0, None
        allowed = self.prune_max - self.removed
        candidates = [e for e in entries if e.kind != "still" and _old_enough(e, now)]
        candidates.sort(key=lambda e: e.time)
        victims, freed = [], 0
        for entry in candidates[:max(allowed, 0)]:
            victims.append(entry)
            freed += size_of(entry)
            if freed >= deficit:
                return victims, freed, None
        floor_mb, free_mb = self.floor_bytes / MB, free_bytes / MB
        if allowed <= 0:
            return [], 0, (f"free space {free_mb:.1f} MB is below output.min_free_mb = {floor_mb:.0f} MB and the floor "
                        f"has already removed output.min_free_prune_max = {self.prune_max} result(s) in this run; "
                        f"set output.keep_days or output.max_results, or free space on the disk")
        return [], 0, (f"free space {free_mb:.1f} MB is below output.min_free_mb = {floor_mb:.0f} MB, and removing "
                    f"the {len(victims)} continuous result(s) the floor may remove would free only "
                    f"{freed / MB:.1f} MB, so none were removed; free space on the disk or lower output.min_free_mb "
                    f"(stills are never removed for space)")

    def note(self, victims: list[Entry], freed: int, when: float) -> None:
        self.removed += len(victims)
        self.last = {"time": when, "removed": len(victims), "freed_mb": round(freed / MB, 2),
                     "ids": [victims[0].id, victims[-1].id]}
