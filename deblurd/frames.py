"""The two values that travel down the pipeline: a captured Frame and the Severity decided for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

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
    spool: Optional[Path] = None
    """The spooled still's JPEG this frame was read from (deblurd.daemon.spool.SpoolFolder): released once it is stored."""

    def __post_init__(self) -> None:
        if self.pixels.dtype != np.uint8 or self.pixels.ndim != 3 or self.pixels.shape[2] != 3:
            raise ValueError(f"Frame pixels must be HxWx3 uint8 RGB, got {self.pixels.dtype} {self.pixels.shape}")


@dataclass(frozen=True)
class Severity:
    """A frame's verdict: its label (stats, index, LED), the share of it on each route, the model that decided,
    and the blur map behind it (coarse grid, for the sidecar)."""

    label: SeverityLabel
    scores: dict[str, float]
    model: str
    map: Optional[dict[str, Any]] = None
