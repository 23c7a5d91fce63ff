"""Start-up recovery: what a kill or power cut can leave in the output folder, and the next free result id.

A result is written image(s) → sidecar → index line. A kill between those steps leaves whole files that no index
line names. A result whose sidecar exists is complete (the sidecar is written last and lists every file), so it
is indexed again from its sidecar; images without a sidecar are a result cut short and are removed. The next id
starts past the highest id on disk as well as in the index, so a name is never reused.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deblurd.atomic import TMP_MARK

log = logging.getLogger(__name__)

DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RESULT_FILE = re.compile(r"^\d{6}-(?P<id>\d+)(?:-[a-z]+)?\.(?:jpg|png|json)$")
ENTRY_KEYS = ("id", "time", "kind", "severity", "passthrough", "files")
"""The index line's fields; the sidecar repeats them, which is what lets recovery rebuild a lost line."""


@dataclass
class Recovery:
    """What open() found: results to index again, files removed, and the highest id seen anywhere."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    highest_id: int = 0


def day_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and DAY_DIR.match(p.name))


def _remove_temp_files(out: Path, days: list[Path], found: Recovery) -> None:
    for folder in (out, *days):
        for tmp in folder.glob(f".*{TMP_MARK}*"):
            tmp.unlink(missing_ok=True)
            found.removed.append(tmp)


def _entry_from_sidecar(out: Path, sidecar: Path) -> dict[str, Any] | None:
    """The index entry a complete result's sidecar describes, or None when a file it lists is missing."""
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all((out / rel).is_file() for rel in files.values()):
        return None
    return {key: data[key] for key in ENTRY_KEYS if key in data}


def recover(out: Path, indexed_ids: set[int]) -> Recovery:
    """Remove temp files and cut-short results, find complete results without an index line, and the top id."""
    found = Recovery()
    days = day_dirs(out)
    _remove_temp_files(out, days, found)
    by_id: dict[int, list[Path]] = defaultdict(list)
    for day in days:
        for path in day.iterdir():
            match = RESULT_FILE.match(path.name)
            if match:
                by_id[int(match["id"])].append(path)
    found.highest_id = max(by_id, default=0)
    for result_id in sorted(set(by_id) - indexed_ids):
        paths = by_id[result_id]
        sidecars = [p for p in paths if p.suffix == ".json"]
        entry = _entry_from_sidecar(out, sidecars[0]) if sidecars else None
        if entry is not None and entry.get("id") == result_id:
            found.entries.append(entry)
        elif not sidecars:
            for path in paths:
                path.unlink(missing_ok=True)
                found.removed.append(path)
        else:
            log.warning("%s: result %d is incomplete (a file its sidecar lists is missing); left as it is",
                        out, result_id)
    return found
