"""Start-up recovery: what a kill or power cut can leave in the output folder, and the next free result id.

A result is written image(s) → sidecar → index line. A kill between those steps leaves whole files that no index
line names. A result whose sidecar exists is complete (the sidecar is written last and lists every file), so it
is indexed again from its sidecar; images without a sidecar are a result cut short and are removed. The next id
starts past the highest id on disk as well as in the index, so a name is never reused.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from deblurd.atomic import TMP_MARK
from deblurd.output.layout import (
    BadRecord,
    IndexEntry,
    Sidecar,
    UnsafePath,
    confined,
    day_dirs,
    parse_result_name,
    read_text_nofollow,
    refuse,
)

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    """What open() found: results to index again, files removed, and the highest id seen anywhere."""

    entries: list[IndexEntry] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    highest_id: int = 0


def _remove_temp_files(out: Path, days: list[Path], found: Recovery) -> None:
    for folder in (out, *days):
        for tmp in folder.glob(f".*{TMP_MARK}*"):
            tmp.unlink(missing_ok=True)
            found.removed.append(tmp)


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _entry_from_sidecar(out: Path, sidecar: Path) -> IndexEntry | None:
    """The index entry a complete result's sidecar describes, or None when a file it lists is missing. A sidecar
    that names files out of the folder, through a link or of another result is refused (and said once)."""
    try:
        entry = Sidecar.parse(json.loads(read_text_nofollow(sidecar))).entry
        paths = [confined(out, rel) for rel in entry.files.values()]
    except (BadRecord, UnsafePath) as exc:
        refuse(out, f"sidecar {sidecar.relative_to(out)}", str(exc))
        return None
    except (OSError, ValueError):
        return None
    return entry if all(_is_file(p) for p in paths) else None


def recover(out: Path, indexed_ids: set[int]) -> Recovery:
    """Remove temp files and cut-short results, find complete results without an index line, and the top id."""
    found = Recovery()
    days = day_dirs(out)
    _remove_temp_files(out, days, found)
    by_id: dict[int, list[Path]] = defaultdict(list)
    for day in days:
        for path in day.iterdir():
            name = parse_result_name(path.name)
            if name is not None:
                by_id[name.id].append(path)
    found.highest_id = max(by_id, default=0)
    for result_id in sorted(set(by_id) - indexed_ids):
        paths = by_id[result_id]
        sidecars = [p for p in paths if p.suffix == ".json"]
        entry = _entry_from_sidecar(out, sidecars[0]) if sidecars else None
        if entry is not None and entry.id == result_id:
            found.entries.append(entry)
        elif not sidecars:
            for path in paths:
                path.unlink(missing_ok=True)
                found.removed.append(path)
        else:
            log.warning("%s: result %d is incomplete (a file its sidecar lists is missing); left as it is",
                        out, result_id)
    return found
