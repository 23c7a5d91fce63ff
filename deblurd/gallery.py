"""The results gallery: static HTML pages in the output folder, to open from a copy of it (file://, no server).

Work in progress: the entry and the write_gallery signature are fixed (the `deblur` command codes against them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

INDEX_PAGE = "index.html"


@dataclass(frozen=True)
class GalleryEntry:
    """One result as the gallery shows it. Hrefs are relative to the gallery's folder, with forward slashes."""

    id: int
    """Unique per gallery; results sort by (time, id), newest first."""
    time: float
    """Capture (or processing) time, seconds since the epoch."""
    kind: str
    """"continuous" or "still" (the daemon), "file" (`deblurd deblur`)."""
    severity: str
    """The frame's label: sharp, semi or heavy."""
    input_href: Optional[str]
    """The input image; None when it was not kept."""
    restored_href: Optional[str]
    """The restored image; None for a pass-through (sharp) result."""
    shares: dict[str, float] = field(default_factory=dict)
    """Share of the frame on each route (the sidecar's `scores`)."""
    blur_map: tuple[str, ...] = ()
    """The blur map's rows, one letter per cell (s sharp, m semi, h heavy); () when there is none."""
    map_columns: tuple[float, ...] = ()
    """Cell edges across the image as fractions of its width (len = cells per row + 1); () = evenly spaced."""
    map_rows: tuple[float, ...] = ()
    """Cell edges down the image as fractions of its height (len = rows + 1); () = evenly spaced."""
    lens_position: Optional[float] = None
    """LensPosition in dioptres, when the source knew it."""
    temperature_c: Optional[float] = None
    """SoC temperature when the result was made, when known."""
    title: str = ""
    """A caption, e.g. the input file's name."""


def map_grid(record: Optional[dict[str, Any]]) -> dict[str, Any]:
    """GalleryEntry's blur_map, map_columns and map_rows from a blur-map record (Severity.map, the sidecar's
    `blur_map`): use as GalleryEntry(..., **map_grid(severity.map))."""
    raise NotImplementedError


def write_gallery(folder: Path, entries: list[GalleryEntry]) -> Path:
    """Write the gallery for `entries` into `folder` and return the path of its index.html.

    Every page is written atomically (AtomicWriter); files that did not change are not rewritten. Entries may
    come in any order (the pages show the newest first). Image hrefs are relative to `folder`."""
    raise NotImplementedError


def entries_from_output(folder: Path) -> list[GalleryEntry]:
    """The gallery entries of a store's output folder (index.jsonl and the sidecars)."""
    raise NotImplementedError
