"""The two values that travel down the pipeline: a captured Frame and the Severity its route gave it.

A Severity's label is not chosen: it is what the route did (route_label), so the stored label, the `passthrough`
flag, the files written, the gallery's badge and the counters can never disagree with the pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

SeverityLabel = Literal["sharp", "semi", "heavy"]
SEVERITY_LABELS: tuple[SeverityLabel, ...] = ("sharp", "semi", "heavy")
FrameKind = Literal["continuous", "still"]


@dataclass(frozen=True)
class Frame:
    """RGB uint8 pixels plus where and when they came from; stills are button captures that never drop."""

    pixels: np.ndarray
    seq: int
    captured_at: float
    kind: FrameKind = "continuous"
    metadata: dict[str, Any] = field(default_factory=dict)
    spool: Path | None = None
    """The spooled still's JPEG this frame was read from (deblurd.daemon.spool.SpoolFolder): released once it is
    stored."""

    def __post_init__(self) -> None:
        if self.pixels.dtype != np.uint8 or self.pixels.ndim != 3 or self.pixels.shape[2] != 3:
            raise ValueError(f"Frame pixels must be HxWx3 uint8 RGB, got {self.pixels.dtype} {self.pixels.shape}")


def route_label(restored: Mapping[str, float]) -> SeverityLabel:
    """A result's label from what its route restored: sharp when no generator touched it, else the generator that
    restored the larger share (semi on a tie)."""
    if not restored:
        return "sharp"
    return "semi" if restored.get("semi", -1.0) >= restored.get("heavy", -1.0) else "heavy"


@dataclass(frozen=True)
class Severity:
    """What the route did to a frame: the share of the frame each generator restored (empty: nothing was, the
    frame passed through), and the label (stats, index, badge, LED) that follows from it; beside them the blur
    map's scores (the share of the frame on each route), the model that decided, and the map (coarse grid, for
    the sidecar)."""

    scores: dict[str, float]
    model: str
    map: dict[str, Any] | None = None
    restored: dict[str, float] = field(default_factory=dict)
    """Generator -> share of the frame it restored (mean blend weight over the frame); only generators that
    changed a pixel are keys."""
    label: SeverityLabel = field(init=False)

    def __post_init__(self) -> None:
        unknown = set(self.restored) - set(SEVERITY_LABELS[1:])
        if unknown:
            raise ValueError(f"restored names {sorted(unknown)}: only generators ({', '.join(SEVERITY_LABELS[1:])}) "
                             f"restore")
        object.__setattr__(self, "label", route_label(self.restored))

    @property
    def passthrough(self) -> bool:
        """Nothing was restored: the result is the input itself (stored as the input only)."""
        return not self.restored
