"""The severity classes as the user sees them: the blur map's letter, the colour and the gallery's strength of
tint, in one table. The gallery's CSS and script and the map overlay are generated from it, never retyped.

The letters are those the blur map writes into a sidecar's `rows` (restore.blur_map.MAP_LETTERS, in
frames.SEVERITY_LABELS order; tests/test_layout.py checks they agree), so an old folder's maps keep their colours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class SeverityStyle:
    """One class: its name, its letter in a blur map, its RGB colour, how strongly a map cell is tinted, and the
    badge's text colour (dark on a light colour, light on a dark one)."""

    name: str
    letter: str
    rgb: tuple[int, int, int]
    cell_alpha: float
    badge_text: str
    caption: str


SEVERITY_STYLES: tuple[SeverityStyle, ...] = (
    SeverityStyle("sharp", "s", (40, 200, 80), 0.18, "#000", "sharp (passed through)"),
    SeverityStyle("semi", "m", (250, 200, 20), 0.3, "#000", "semi"),
    SeverityStyle("heavy", "h", (230, 40, 40), 0.35, "#fff", "heavy"),
)

COLOURS: dict[str, tuple[int, int, int]] = {s.name: s.rgb for s in SEVERITY_STYLES}
"""RGB per class name (the map overlay's tint)."""


def css() -> str:
    """The CSS rules the severity colours drive: map cells, badges and the legend."""
    rules = [":root { " + " ".join(f"--{s.name}: {', '.join(map(str, s.rgb))};" for s in SEVERITY_STYLES) + " }"]
    for s in SEVERITY_STYLES:
        rules.append(f".cell-{s.letter} {{ background: rgba(var(--{s.name}), {s.cell_alpha}); }}")
        rules.append(f".badge.{s.name} {{ background: rgb(var(--{s.name})); color: {s.badge_text}; }}")
    return "/* generated from deblurd/output/palette.py */\n" + "\n".join(rules) + "\n"


def script_data() -> str:
    """The classes as the gallery's script reads them (DEBLURD.severities): names in order."""
    return json.dumps([s.name for s in SEVERITY_STYLES])
