"""The results gallery: static pages in the output folder that work when opened from a copy of it (file://).

  <folder>/index.html                       the newest results (at least INDEX_RESULTS), newest first
  <folder>/gallery/YYYY-MM-DD.html          one page per day
  <folder>/gallery/data/YYYY-MM-DD-NNNN.js  the results themselves, DATA_CHUNK ids per file
  <folder>/gallery/gallery.css, gallery.js  the look and the pager, filters and views (written once)

No server and no network: the pages are plain HTML, CSS and JavaScript, every link is relative, and the results
come as <script> files (a browser refuses fetch() of local JSON on file://, not a script). The
browser draws each result's blur map from its letters as a grid of tinted cells, so no overlay image is written.
Results live in chunks of ids that never change once their ids have passed, so a refresh rewrites the newest
chunk, the newest day's page and index.html, and leaves the rest alone: only files whose bytes changed are
written (atomically), which keeps an SD card's writes down on a day of thousands of results.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deblurd.atomic import TMP_MARK, AtomicWriter, fsync_dir
from deblurd.errors import ExitCode
from deblurd.log_limit import RepeatLimiter
from deblurd.output import palette
from deblurd.output.layout import GALLERY_DATA_DIR as DATA_DIR
from deblurd.output.layout import (
    GALLERY_DIR,
    INDEX_NAME,
    SIDECAR,
    IndexEntry,
    Sidecar,
    UnsafePath,
    data_file_name,
    day_name,
    day_page_name,
    is_data_file,
    is_day_page,
    is_link,
    read_index,
    read_sidecar,
    refuse,
)
from deblurd.output.layout import GALLERY_INDEX as INDEX_PAGE

if TYPE_CHECKING:  # the store needs OpenCV; the gallery alone runs on the standard library (copy-results.sh)
    from deblurd.output.store import ResultStore

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("gallery_assets")
DATA_CHUNK = 50
"""Results per data script: ids id // DATA_CHUNK share one file (a chunk of a day). Small, because a refresh
rewrites the newest chunk whole: about 11 KB on average per new result at this size."""
INDEX_RESULTS = 1000
"""index.html loads the newest chunks until it holds at least this many results; the day pages hold the rest."""
REFRESH_S = 5.0
"""The daemon refreshes the gallery at most this often (and once at stop)."""
SEVERITIES = tuple(s.name for s in palette.SEVERITY_STYLES)
KIND_NAMES = {"still": "stills (button)", "continuous": "continuous", "file": "files (deblurd deblur)"}
DAEMON_KINDS = frozenset({"still", "continuous"})


def offered_kinds(entries: list[GalleryEntry]) -> set[str]:
    """The kinds the page's drop-down offers: those its results have, and both of the daemon's on a daemon's
    gallery (also an empty one), so that `index.html#kind=still` selects "stills" where there are none yet."""
    kinds = {e.kind for e in entries}
    return kinds | DAEMON_KINDS if not kinds or kinds & DAEMON_KINDS else kinds


STALE_TMP_S = 60.0
"""A temporary gallery file older than this was left by a crash (a write takes milliseconds): removed."""
SEVERITY_FILTERS = "\n".join(f'<label class="sev-{s.name}"><input type="checkbox" value="{s.name}" checked> '
                             f'{s.name}</label>' for s in palette.SEVERITY_STYLES)
SEVERITY_LEGEND = " ".join(f'<span class="cell-{s.letter}"></span> {html.escape(s.caption)}'
                           for s in palette.SEVERITY_STYLES)


@dataclass(frozen=True)
class GalleryEntry:
    """One result as the gallery shows it. Hrefs are relative to the gallery's folder, with forward slashes."""

    id: int
    """Unique per gallery; results sort by (time, id), newest first."""
    time: float
    """Capture (or processing) time, seconds since the epoch; its local date picks the day page."""
    kind: str
    """"continuous" or "still" (the daemon), "file" (`deblurd deblur`)."""
    severity: str
    """The frame's label: sharp, semi or heavy."""
    input_href: str | None
    """The input image; None when it was not kept."""
    restored_href: str | None
    """The restored image; None for a pass-through (sharp) result."""
    shares: dict[str, float] = field(default_factory=dict)
    """Share of the frame on each route (the sidecar's `scores`)."""
    blur_map: tuple[str, ...] = ()
    """The blur map's rows, one letter per cell (s sharp, m semi, h heavy); () when there is none."""
    map_columns: tuple[float, ...] = ()
    """Cell edges across the image as fractions of its width (len = cells per row + 1); () = evenly spaced."""
    map_rows: tuple[float, ...] = ()
    """Cell edges down the image as fractions of its height (len = rows + 1); () = evenly spaced."""
    lens_position: float | None = None
    """LensPosition in dioptres, when the source knew it."""
    temperature_c: float | None = None
    """SoC temperature when the result was made, when known."""
    title: str = ""
    """A caption, e.g. the input file's name."""


@lru_cache(maxsize=64)
def _edges(starts: tuple[int, ...], tile: int, size: int) -> tuple[float, ...]:
    """Cell edges (fractions of `size`) for tiles at `starts`: overlapping tiles meet half-way through their
    overlap, so every pixel belongs to one cell. Cached: every frame of one size has the same grid."""
    inner = [(min(a + tile, size) + b) / 2 for a, b in zip(starts, starts[1:])]
    return tuple(round(min(max(e / size, 0.0), 1.0), 4) for e in (0, *inner, size))


def map_grid(record: dict[str, Any] | None) -> dict[str, Any]:
    """GalleryEntry's blur_map, map_columns and map_rows from a blur-map record (Severity.map, the sidecar's
    `blur_map`): use as GalleryEntry(..., **map_grid(severity.map)). A missing or unreadable record gives no map."""
    if record is None:
        return {}
    try:
        rows = tuple(str(r) for r in record["rows"])
        if not rows or len({len(r) for r in rows}) != 1:
            return {}
        width, height = record["working_size"]
        tile, starts = int(record["tile_px"]), record["starts"]
        columns = _edges(tuple(starts["x"]), int(tile), int(width))
        lines = _edges(tuple(starts["y"]), int(tile), int(height))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return {}
    if len(columns) != len(rows[0]) + 1 or len(lines) != len(rows) + 1:
        columns, lines = (), ()
    return {"blur_map": rows, "map_columns": _unless_even(columns), "map_rows": _unless_even(lines)}


def _unless_even(edges: tuple[float, ...]) -> tuple[float, ...]:
    """() for evenly spaced edges (the page spaces cells evenly by default), saving every entry a list."""
    n = len(edges) - 1
    return () if all(abs(e - k / n) < 1e-3 for k, e in enumerate(edges)) else edges


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def entry_from_result(entry: IndexEntry, sidecar: Sidecar | None) -> GalleryEntry:
    """A store result (its index entry, and its sidecar when it could be read) as a gallery entry."""
    source_file = (sidecar.camera.get("file") if sidecar else None)
    scores = sidecar.scores if sidecar else {}
    return GalleryEntry(entry.id, entry.time, entry.kind, entry.severity, entry.files.get("input"),
                        entry.files.get("restored"), {k: float(v) for k, v in scores.items() if _number(v) is not None},
                        **map_grid(sidecar.blur_map if sidecar else None),
                        lens_position=sidecar.lens_position if sidecar else None,
                        temperature_c=_number(sidecar.thermal.get("temp_c")) if sidecar else None,
                        title=Path(str(source_file)).name if source_file else "")


def _read_sidecar(folder: Path, entry: IndexEntry) -> Sidecar | None:
    try:
        return read_sidecar(folder, entry)
    except UnsafePath as exc:
        refuse(folder, f"result {entry.id}'s {SIDECAR}", str(exc))
    except (OSError, ValueError):
        pass  # pruned meanwhile, or damaged: the index entry alone still makes a gallery entry
    return None


def entries_from_output(folder: Path, index: list[IndexEntry] | None = None,
                        known: dict[int, GalleryEntry] | None = None) -> list[GalleryEntry]:
    """The gallery entries of a store's output folder: its index (read from index.jsonl unless given; a torn
    last line and lines that are not results are skipped) with each result's sidecar. Entries in `known` (by id)
    are reused, so a refresh reads only the sidecars of new results."""
    folder = Path(folder)
    out = []
    for entry in read_index(folder) if index is None else index:
        cached = (known or {}).get(entry.id)
        out.append(cached if cached is not None else entry_from_result(entry, _read_sidecar(folder, entry)))
    return out


def encode_entry(e: GalleryEntry) -> str:
    """The entry as the pages' script reads it (short keys: a day of thousands stays small)."""
    data: dict[str, Any] = {"i": e.id, "e": round(e.time, 3), "t": datetime.fromtimestamp(e.time).strftime(
        "%Y-%m-%d %H:%M:%S"), "k": e.kind, "s": e.severity, "a": e.input_href and quote(e.input_href),
        "r": e.restored_href and quote(e.restored_href)}
    if e.shares:
        data["p"] = [round(e.shares.get(s, 0.0), 3) for s in SEVERITIES]
    if e.blur_map:
        data["m"] = list(e.blur_map)
        data.update({k: list(v) for k, v in (("x", e.map_columns), ("y", e.map_rows)) if v})
    for key, value in (("l", e.lens_position), ("c", e.temperature_c)):
        if value is not None:
            data[key] = value
    if e.title:
        data["n"] = e.title
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=1)
def _assets() -> tuple[Template, dict[str, bytes]]:
    """The page template, and the files every page shares (copied into the gallery folder)."""
    shared = {"gallery.css": palette.css().encode() + (ASSETS / "gallery.css").read_bytes(),
              "gallery.js": (ASSETS / "gallery.js").read_bytes()}
    return Template((ASSETS / "page.html").read_text(encoding="utf-8")), shared


@dataclass
class _Day:
    name: str
    entries: list[GalleryEntry] = field(default_factory=list)
    chunks: dict[str, list[GalleryEntry]] = field(default_factory=dict)


class GalleryPages:
    """Writes one folder's gallery, rewriting only the files whose bytes changed since it last wrote or read them."""

    def __init__(self, folder: Path, writer: AtomicWriter | None = None) -> None:
        self.folder = Path(folder)
        self.writer = writer or AtomicWriter()
        self._digests: dict[Path, bytes] = {}
        self._encoded: dict[int, tuple[GalleryEntry, str, str]] = {}
        """By id: the entry, its day and its encoding, reused while the entry is unchanged."""
        self.files_written = 0
        self.bytes_written = 0

    def write(self, entries: list[GalleryEntry]) -> Path:
        """Write the pages for `entries` (any order) and remove pages of days no entry has any more. UnsafePath
        when the gallery's folders are links (nothing is written through them)."""
        days = self._days(entries)
        pages = self._render(days, len(entries))
        for rel in (GALLERY_DIR, f"{GALLERY_DIR}/{DATA_DIR}", INDEX_PAGE):
            if is_link(self.folder / rel):
                raise UnsafePath(f"{self.folder / rel} is a symbolic link")
        data_dir = self.folder / GALLERY_DIR / DATA_DIR
        data_dir.mkdir(parents=True, exist_ok=True)
        touched = [self.folder / rel for rel, data in pages.items() if self._put(self.folder / rel, data)]
        removed = self._remove_stale(pages)
        for folder in {p.parent for p in [*touched, *removed]}:
            fsync_dir(folder)
        self._encoded = {e.id: self._encoded[e.id] for e in entries}
        return self.folder / INDEX_PAGE

    def _days(self, entries: list[GalleryEntry]) -> list[_Day]:
        """Entries by day, newest first throughout: days, the chunks of a day, the entries of a chunk."""
        days: dict[str, _Day] = {}
        for e in sorted(entries, key=lambda e: (e.time, e.id), reverse=True):
            _, name, _ = self._cached(e)
            day = days.setdefault(name, _Day(name))
            day.entries.append(e)
            day.chunks.setdefault(data_file_name(name, e.id // DATA_CHUNK), []).append(e)
        return sorted(days.values(), key=lambda d: d.name, reverse=True)

    def _cached(self, e: GalleryEntry) -> tuple[GalleryEntry, str, str]:
        cached = self._encoded.get(e.id)
        if cached is None or (cached[0] is not e and cached[0] != e):
            cached = self._encoded[e.id] = (e, day_name(e.time), encode_entry(e))
        return cached

    def _render(self, days: list[_Day], total: int) -> dict[str, bytes]:
        """Every file of the gallery, by path relative to the folder."""
        pages = {f"{GALLERY_DIR}/{name}": data for name, data in _assets()[1].items()}
        for day in days:
            for name, chunk in day.chunks.items():
                body = ",\n".join(self._cached(e)[2] for e in chunk)
                pages[f"{GALLERY_DIR}/{DATA_DIR}/{name}"] = f"DEBLURD.add([\n{body}\n]);\n".encode()
            pages[f"{GALLERY_DIR}/{day_page_name(day.name)}"] = self._page(days, day.name, "../", day.entries,
                                                                  [f"{DATA_DIR}/{n}" for n in day.chunks])
        recent: list[tuple[str, list[GalleryEntry]]] = []
        for name, chunk in sorted(((n, c) for d in days for n, c in d.chunks.items()),
                                  key=lambda item: (item[1][0].time, item[0]), reverse=True):
            if sum(len(c) for _, c in recent) >= INDEX_RESULTS:
                break
            recent.append((name, chunk))
        shown = [e for _, chunk in recent for e in chunk]
        pages[INDEX_PAGE] = self._page(days, None, "", shown, [f"{GALLERY_DIR}/{DATA_DIR}/{n}" for n, _ in recent],
                                       total)
        return pages

    def _page(self, days: list[_Day], current: str | None, root: str, entries: list[GalleryEntry],
              scripts: list[str], total: int = 0) -> bytes:
        template = _assets()[0]
        counts = Counter(e.severity for e in entries)
        breakdown = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES)
        if current is None:
            heading = "deblurd results"
            summary = (f"{total} result(s) on {len(days)} day(s); newest first, this page holds the newest "
                       f"{len(entries)} ({breakdown}). Older ones: the day pages." if total else
                       "No results yet: this page fills in as the daemon stores them.")
        else:
            heading = f"deblurd results of {current}"
            summary = f"{len(entries)} result(s) ({breakdown}), newest first."
        day_prefix = "" if current is not None else f"{GALLERY_DIR}/"
        nav = [f'<a href="{root}{INDEX_PAGE}"{"" if current else " class=current"}>newest</a>']
        nav += [f'<span class="current">{d.name}</span>' if d.name == current else
                f'<a href="{day_prefix}{day_page_name(d.name)}">{d.name}</a>' for d in days]
        kinds = sorted(offered_kinds(entries))
        options = "".join(f'<option value="{html.escape(k)}">{html.escape(KIND_NAMES.get(k, k))}</option>'
                          for k in kinds)
        page = template.substitute(
            title=html.escape(heading), heading=html.escape(heading), summary=html.escape(summary),
            nav="\n".join(nav), kinds=options, root=root, assets=day_prefix, severities=palette.script_data(),
            severity_filters=SEVERITY_FILTERS, severity_legend=SEVERITY_LEGEND,
            noscript="Loading the results... (this page needs JavaScript to list them)",
            data="\n".join(f'<script src="{s}"></script>' for s in scripts))
        return page.encode()

    def _put(self, path: Path, data: bytes) -> bool:
        """Write `path` unless it already holds `data`; True when it was written."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        known = self._digests.get(path)
        if known is None and path.is_file():
            known = self._digests[path] = hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
        if known == digest:
            return False
        self.writer.write(path, data, sync_dir=False)
        self._digests[path] = digest
        self.files_written += 1
        self.bytes_written += len(data)
        return True

    def _remove_stale(self, pages: dict[str, bytes]) -> list[Path]:
        """Remove the day pages and data files of days gone (retention), and temporary files a crash left."""
        removed = []
        stale_before = time.time() - STALE_TMP_S
        for folder, pattern in ((self.folder / GALLERY_DIR, is_day_page),
                                (self.folder / GALLERY_DIR / DATA_DIR, is_data_file)):
            for path in folder.iterdir():
                if path.name.startswith(".") and TMP_MARK in path.name:
                    try:
                        gone = path.stat().st_mtime < stale_before
                    except FileNotFoundError:  # renamed into place meanwhile by another writer
                        continue
                else:
                    gone = pattern(path.name) and path.relative_to(self.folder).as_posix() not in pages
                if gone and (path.is_file() or is_link(path)):
                    path.unlink(missing_ok=True)
                    self._digests.pop(path, None)
                    removed.append(path)
        return removed


def write_gallery(folder: Path, entries: list[GalleryEntry]) -> Path:
    """Write the gallery for `entries` into `folder` and return the path of its index.html.

    `entries` come in any order with unique ids; their hrefs are relative to `folder`. The pages are written
    atomically (AtomicWriter), files whose bytes did not change are left alone, and day pages and data files of
    days no entry has any more are removed; nothing else in `folder` is touched. Open index.html in a browser,
    also from a copy of the folder: it needs no server and no network."""
    return GalleryPages(folder).write(entries)


class GalleryUpdater:
    """Keeps a store's gallery current from the daemon's store thread: at most every REFRESH_S, once at stop.

    A refresh that fails (a full disk) is logged (rate-limited) and retried at the next one: the gallery is
    derived from the index and the sidecars, so losing a refresh loses nothing."""

    def __init__(self, store: ResultStore, interval_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.interval_s, self.clock = store, interval_s, clock
        self.pages = GalleryPages(store.dir, store.writer)
        self._known: dict[int, GalleryEntry] = {}
        self._written: tuple[int, Any, Any] | None = None
        self._due = 0.0
        self._alerts = RepeatLimiter(log)

    def maybe_refresh(self) -> None:
        """Refresh when REFRESH_S has passed since the last one and the store's index changed."""
        if self.clock() >= self._due:
            self.refresh()

    def refresh(self) -> None:
        """Bring the gallery up to date with the store's index now (if it changed)."""
        index = self.store.entries
        state = (len(index), index[0].id if index else None, index[-1].id if index else None)
        self._due = self.clock() + self.interval_s
        if state == self._written:
            return
        try:
            entries = entries_from_output(self.store.dir, index, self._known)
            self.pages.write(entries)
        except (OSError, UnsafePath) as exc:
            self._alerts.log(logging.WARNING, "gallery", f"cannot update the gallery in {self.store.dir} ({exc}); the "
                                                         f"results are safe, retrying every {self.interval_s:.0f} s")
            return
        self._known = {e.id: e for e in entries}
        self._written = state
        self._alerts.clear("gallery", f"gallery in {self.store.dir} up to date again")


def main(argv: list[str] | None = None) -> int:
    """`python -m deblurd.output.gallery FOLDER`: (re)write the gallery of an output folder or of a copy of one."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m deblurd.output.gallery", description=main.__doc__)
    parser.add_argument("folder", type=Path, help="a deblurd output folder (it holds index.jsonl)")
    args = parser.parse_args(argv)
    if not (args.folder / INDEX_NAME).is_file():
        print(f"gallery: {args.folder} holds no index.jsonl: give the output folder (output.dir) or a copy of it",
              file=sys.stderr)
        return ExitCode.NOINPUT
    try:
        page = write_gallery(args.folder, entries_from_output(args.folder))
    except OSError as exc:
        print(f"gallery: cannot write the gallery in {args.folder} ({exc}): check its permissions and free space",
              file=sys.stderr)
        return ExitCode.CANTCREAT
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
