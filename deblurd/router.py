"""Where a frame goes: passed through untouched (sharp) or restored by the generator of its blur class.

The classifier decides; a forced route (benchmarks, tests) overrides its verdict here, so nothing needs to patch
the classifier. This is the seam where a per-region blur map replaces the one label per frame.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np

from deblurd.frames import SEVERITY_LABELS, Severity, SeverityLabel
from deblurd.inference import ModelPack, merge_luma, split_luma


class Router:
    """Routes frames of one pack; `forced` sends every frame down that route whatever the classifier says."""

    def __init__(self, pack: ModelPack, forced: Optional[SeverityLabel] = None) -> None:
        if forced is not None and forced not in SEVERITY_LABELS:
            raise ValueError(f"forced route must be one of {', '.join(SEVERITY_LABELS)}, got {forced!r}")
        self.pack = pack
        self.forced = forced

    def decide(self, luma: np.ndarray) -> Severity:
        """The classifier's verdict on luminance, with the forced route as its label when one is set."""
        severity = self.pack.classifier.classify(luma)
        return severity if self.forced is None else dataclasses.replace(severity, label=self.forced)

    def restore(self, luma: np.ndarray, label: str) -> np.ndarray:
        """Luminance on the route of `label`: the same array for sharp, the class's generator otherwise."""
        return luma if label == "sharp" else self.pack.restorers[label].restore(luma)

    def route_luma(self, luma: np.ndarray) -> tuple[Severity, np.ndarray]:
        """Decide and restore luminance alone (float32 in [0, 1]): what the evaluation scores."""
        severity = self.decide(luma)
        return severity, self.restore(luma, severity.label)

    def route(self, rgb: np.ndarray, timings: Optional[dict[str, float]] = None) -> tuple[Severity, np.ndarray]:
        """Decide on an RGB frame and restore its luminance; sharp frames come back as the very same array."""
        t0 = time.perf_counter()
        luma, ycrcb = split_luma(rgb)
        severity = self.decide(luma)
        t1 = time.perf_counter()
        out = rgb if severity.label == "sharp" else merge_luma(self.restore(luma, severity.label), ycrcb)
        if timings is not None:
            timings["classify_s"] = round(t1 - t0, 4)
            timings["restore_s"] = round(time.perf_counter() - t1, 4)
        return severity, out
