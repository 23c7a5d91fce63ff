"""collect focus pairs for fine-tuning: a sharp reference and one frame per lens position, per scene

For each of N scenes the camera stays put: the lens goes to the reference (autofocus or a given position),
then to each listed position, then back to the reference for a second look that shows whether anything
moved. Files are written whole (AtomicWriter) and manifest.json is rewritten after every scene, so an
interrupted run leaves a usable folder. Stop the service first: it holds the camera.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from deblurd.capture.camera import FrameSource
from deblurd.capture.display import Display, FramebufferDisplay, display_images, read_display_image
from deblurd.capture.sim_camera import SimCamera
from deblurd.capture.sources import open_source
from deblurd.config import load_config
from deblurd.errors import CameraError, NoFocusMotor
from deblurd.frames import Frame
from deblurd.output.store import AtomicWriter, encode_image

log = logging.getLogger(__name__)

COLLECTION_MANIFEST_NAME = "manifest.json"
"""A collected pairs folder's manifest (restore.manifest.PACK_MANIFEST_NAME is a model pack's)."""
FORMAT = "deblurd-pairs/1"
MOVED_THRESHOLD = 0.03  # mean absolute difference (0-1) between the two reference looks
READ_TIMEOUT_S = 5.0
Reference = str | float


@dataclass(frozen=True)
class CollectPlan:
    positions: list[float]
    count: int
    reference: Reference = "auto"
    interval_s: float = 5.0
    settle_s: float = 0.5
    mode: str = "still"
    image_format: str = "png"
    display: tuple[Path, ...] = ()
    """Images shown full screen in front of the camera, one per scene (cycled), for --display."""


def _json_safe(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool, type(None)))}


def reference_drift(a: np.ndarray, b: np.ndarray) -> float:
    """How different two looks at the same scene are (0 = identical, 1 = inverted); sizes must match."""
    if a.shape != b.shape:
        return 1.0
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)))) / 255.0


class PairCollector:
    """Drives one FrameSource through a CollectPlan and writes the pairs folder."""

    def __init__(self, source: FrameSource, plan: CollectPlan, out: Path,
                 sleep: Callable[[float], None] = time.sleep, display: Display | None = None) -> None:
        self.source = source
        self.display = display
        self.plan = plan
        self.out = Path(out)
        self.sleep = sleep
        self.writer = AtomicWriter()
        self.manifest: dict[str, Any] = {}

    def _capture(self, applied: float | None) -> Frame:
        """One frame taken after the lens has settled at `applied`; in video mode, frames still in flight
        from the old position (their metadata says so) are skipped."""
        self.sleep(self.plan.settle_s)
        if self.plan.mode == "still":
            return self.source.capture_still()
        for _ in range(10):
            frame = self.source.read(READ_TIMEOUT_S)
            reported = frame.metadata.get("lens_position")
            if reported is None or applied is None or abs(reported - applied) < 0.05:
                break
        return frame

    def _save(self, scene_dir: Path, name: str, role: str, requested: Reference,
              applied: float | None, frame: Frame) -> dict[str, Any]:
        path = scene_dir / f"{name}.{self.plan.image_format}"
        self.writer.write(path, encode_image(frame.pixels, self.plan.image_format, 95))
        height, width = frame.pixels.shape[:2]
        return {"file": str(path.relative_to(self.out)), "role": role, "lens_requested": requested,
                "lens_applied": applied, "captured_at": frame.captured_at,
                "captured_at_iso": datetime.fromtimestamp(frame.captured_at, UTC).isoformat(),
                "seq": frame.seq, "kind": frame.kind, "size": [width, height],
                "metadata": _json_safe(frame.metadata)}

    def _reference(self) -> tuple[Reference, float | None]:
        if self.plan.reference == "auto":
            return "auto", self.source.autofocus()
        requested = float(self.plan.reference)
        return requested, self.source.set_lens_position(requested)

    def _scene(self, index: int) -> dict[str, Any]:
        scene_dir = self.out / f"scene-{index:04d}"
        scene_dir.mkdir(parents=True, exist_ok=True)
        shown = self.plan.display[(index - 1) % len(self.plan.display)] if self.plan.display else None
        if shown is not None and self.display is not None:
            self.display.show(read_display_image(shown))
        requested, applied = self._reference()
        if applied is None:
            raise CameraError(f"{self.source.name} reported no lens position for the reference; "
                              f"try --reference with a fixed position in dioptres")
        reference = self._capture(applied)
        files = [self._save(scene_dir, "reference", "reference", requested, applied, reference)]
        for position in self.plan.positions:
            moved_to = self.source.set_lens_position(position)
            frame = self._capture(moved_to)
            files.append(self._save(scene_dir, f"lens-{position:g}", "blurred", position, moved_to, frame))
        self.source.set_lens_position(applied)
        check = self._capture(applied)
        drift = reference_drift(reference.pixels, check.pixels)
        if drift > MOVED_THRESHOLD:
            log.warning("scene %d: the scene or camera moved during capture (drift %.3f); discard or retake it",
                        index, drift)
        return {"index": index, "folder": scene_dir.name, "displayed": shown and shown.name,
                "reference_position": applied,
                "reference_drift": round(drift, 4), "moved": drift > MOVED_THRESHOLD, "files": files}

    def _write_manifest(self) -> None:
        data = json.dumps(self.manifest, indent=1).encode("utf-8") + b"\n"
        self.writer.write(self.out / COLLECTION_MANIFEST_NAME, data)

    def run(self) -> dict[str, Any]:
        lens = self.source.lens_range()
        if lens is None:
            raise NoFocusMotor(f"{self.source.name} has no focus motor, so every lens position gives the same "
                               f"image; collect pairs with a Camera Module 3 (or another autofocus camera)")
        self.out.mkdir(parents=True, exist_ok=True)
        self.manifest = {"format": FORMAT, "created": datetime.now(UTC).isoformat(),
                         "source": self.source.name, "lens_range": list(lens), "mode": self.plan.mode,
                         "reference": self.plan.reference, "positions": self.plan.positions,
                         "settle_s": self.plan.settle_s, "scenes": []}
        for index in range(1, self.plan.count + 1):
            if index > 1 and self.plan.interval_s > 0:
                log.info("next scene in %.0f s: point the camera at scene %d/%d and hold it still",
                         self.plan.interval_s, index, self.plan.count)
                self.sleep(self.plan.interval_s)
            self.manifest["scenes"].append(self._scene(index))
            self._write_manifest()
            log.info("scene %d/%d written to %s", index, self.plan.count, self.out)
        return self.manifest


def _positions(text: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--positions {text!r}: expected dioptres separated by commas, "
                                         "e.g. 0,2,8") from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"--positions {text!r}: need one or more dioptre values >= 0")
    return values


def _reference(text: str) -> Reference:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--reference {text!r}: expected 'auto' or a lens position "
                                         "in dioptres") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"--reference {text!r}: dioptres must be >= 0")
    return value


EXAMPLES = """examples:
  sudo systemctl stop deblurd                     first: the service holds the camera
  deblurd collect --positions 0.5,1,2,4 --count 10 --out pairs/   10 scenes, re-aim the camera between them
  deblurd collect --positions 1,2,4 --display shots/ --out pairs/  each image of shots/ shown on the HDMI screen
  deblurd collect --positions 2 --reference 0 --mode video --out pairs/   focused at infinity, video frames
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="config file (camera settings)")
    parser.add_argument("--positions", type=_positions, required=True, metavar="P1,P2,…",
                        help="lens positions in dioptres for the blurred frames (0 = infinity)")
    parser.add_argument("--count", type=int, metavar="N",
                        help="number of scenes (default 1, or one per --display image)")
    parser.add_argument("--reference", type=_reference, default="auto", metavar="auto|DIOPTRES",
                        help="how the sharp reference is focused (default auto = autofocus per scene)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder to write (default ./pairs-<time>)")
    parser.add_argument("--interval", type=float, default=5.0, metavar="S",
                        help="seconds between scenes to re-aim the camera (default 5)")
    parser.add_argument("--settle", type=float, default=0.5, metavar="S",
                        help="seconds to let the lens settle after each move (default 0.5)")
    parser.add_argument("--mode", choices=("still", "video"), default="still",
                        help="full-resolution stills (default) or continuous-mode frames")
    parser.add_argument("--format", choices=("png", "jpg"), default="png", help="image format (default png)")
    parser.add_argument("--display", type=Path, metavar="DIR",
                        help="show each image of DIR full screen on the HDMI framebuffer in front of the camera and "
                             "capture it (on the simulated camera the image becomes the scene)")


def run(args: argparse.Namespace) -> int:
    images = tuple(display_images(args.display)) if args.display else ()
    count = args.count if args.count is not None else max(1, len(images))
    if count < 1 or args.interval < 0 or args.settle < 0:
        print("deblurd collect: --count must be 1 or more, --interval and --settle 0 or more", file=sys.stderr)
        return 2
    cfg = load_config(args.config)
    out = args.out or Path(f"pairs-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    plan = CollectPlan(args.positions, count, args.reference, args.interval, args.settle, args.mode,
                       args.format, images)
    source = open_source(cfg.camera)
    try:
        display = (source if isinstance(source, SimCamera) else FramebufferDisplay()) if images else None
        manifest = PairCollector(source, plan, out, display=display).run()
    except NoFocusMotor as exc:
        print(f"deblurd collect: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        source.close()
    moved = sum(scene["moved"] for scene in manifest["scenes"])
    print(f"{len(manifest['scenes'])} scene(s), {len(plan.positions) + 1} images each, in {out}"
          + (f"; {moved} scene(s) moved during capture (marked in {COLLECTION_MANIFEST_NAME})" if moved else ""))
    return 0
