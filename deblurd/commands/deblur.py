"""restore image files offline with the same models and routing (JPEG and PNG files, folders, patterns)

Nothing is ever overwritten: each input gets names of its own in the output folder, also against the results
of earlier runs. A damaged input, or one over camera.max_image_megapixels (checked from its header before it is
decoded), is refused with its reason while the others are processed (exit 1). Names are shown with their control
characters escaped, so a file name cannot drive the terminal. A result
keeps its input's layout (bit depth, alpha, grey), EXIF and ICC profile; an input with no blurred region is
copied byte for byte as <name>-passthrough.<ext>. The folder's deblur.jsonl gets a line per result once its
files are in place, and its gallery (index.html) shows every result the folder holds. `--skip-existing` resumes a
run that stopped (deblur_inputs.py says how an input is known again); every input that gives no new result is
counted by its reason at the end, and a run whose every input failed leaves no output folder it created.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from deblurd.atomic import AtomicWriter, fsync_dir, temp_name
from deblurd.commands.deblur_inputs import (
    ALREADY_DONE,
    NOTHING_FOUND,
    Finished,
    describe_reasons,
    failure_reason,
    find_inputs,
    identity,
    reason_counts,
    remove_if_empty,
)
from deblurd.commands.loading import load_command_config, load_pack
from deblurd.config import add_config_argument
from deblurd.daemon.heap import return_large_buffers
from deblurd.frames import Severity
from deblurd.image_io import MAX_IMAGE_PIXELS, InputError, Picture, encode_picture, read_picture, rgb8
from deblurd.log_limit import printable
from deblurd.output.layout import INDEX_NAME
from deblurd.output.store import StoreError, encode_image
from deblurd.restore.router import Router

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  deblurd deblur photo1.jpg photo2.png -o restored/
  deblurd deblur ~/pictures --recursive -o restored/     every JPEG and PNG in the folder and its sub-folders
  deblurd deblur 'shots/*.jpg' --save-map -o restored/   a quoted pattern; also <name>-map.png, the blur map
  deblurd deblur shots/ --json -o restored/ > summary.json
  deblurd deblur shots/ --skip-existing -o restored/     after a stop or a full disk: only what is not done yet
"""
RECORD_NAME = "deblur.jsonl"
"""One line per result of this folder, for the gallery; appended after the result's files are in place."""
KINDS = ("restored", "passthrough")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="JPEG or PNG files, folders of them, or quoted patterns such as 'shots/*.jpg'")
    parser.add_argument("-o", "--output", type=Path, default=Path("deblurred"), metavar="DIR",
                        help="folder for the results and their gallery (default ./deblurred)")
    parser.add_argument("-r", "--recursive", action="store_true",
                        help="also take the images in a folder's sub-folders (and let ** in a pattern cross folders)")
    parser.add_argument("--save-map", action="store_true",
                        help="also write <name>-map.png: the input tinted by the route of each region (blur map)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary of every input on stdout instead of a line per image")
    parser.add_argument("--skip-existing", action="store_true",
                        help="resume: leave out inputs whose result an earlier run left complete in the output folder "
                             "(same file: path, size and modification time), instead of restoring them again as -2")


class OutputNames:
    """Result stems that no file of the output folder and no earlier input of this run holds: the input's own
    name, then -2, -3... So `deblur d1/a.jpg d2/a.jpg`, and a second run into the same folder, overwrite nothing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.claimed: set[str] = set()

    def _free(self, stem: str) -> bool:
        names = [f"{stem}-{kind}.{fmt}" for kind in KINDS for fmt in ("jpg", "png")] + [f"{stem}-map.png"]
        return stem not in self.claimed and not any((self.folder / name).exists() for name in names)

    def claim(self, stem: str) -> str:
        candidate, count = stem, 1
        while not self._free(candidate):
            count += 1
            candidate = f"{stem}-{count}"
        self.claimed.add(candidate)
        return candidate


def publish(data: bytes, target: Path) -> None:
    """Write `target` whole (a temporary name, fsync) and give it its name only if nothing holds that name yet:
    a file that appeared meanwhile (another program) is never replaced."""
    tmp = temp_name(target)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, target)
    except FileExistsError as exc:
        raise InputError(f"{printable(target)} appeared while it was being written (another program writes to this "
                         f"folder); run again") from exc
    finally:
        tmp.unlink(missing_ok=True)


def restore(router: Router, pixels: np.ndarray, progress: Callable[[float], None] | None = None,
            ) -> tuple[Severity, np.ndarray | None]:
    """Route pixels of any layout; None when no region is restored (the file then passes through as it is).
    8-bit RGB takes the daemon's own path (a large image the stills' cascade, which reports its `progress`);
    other layouts restore their luminance in float at their own depth, and an alpha channel is kept as it is."""
    colour = pixels if pixels.ndim == 2 else np.ascontiguousarray(pixels[:, :, :3])
    if colour.ndim == 3 and colour.dtype == np.uint8:
        severity, out = router.route_still(colour, progress=progress)  # a large image: the stills' cascade
        if severity.passthrough:
            return severity, None
    else:
        scale = float(np.iinfo(colour.dtype).max)
        values = colour.astype(np.float32) / scale
        ycrcb = None if values.ndim == 2 else cv2.cvtColor(values, cv2.COLOR_RGB2YCrCb)
        luma = values if ycrcb is None else np.ascontiguousarray(ycrcb[:, :, 0])
        severity, weights = router.decide(luma)
        if severity.passthrough:
            return severity, None
        restored = router.blend(luma, weights)
        if ycrcb is not None:
            ycrcb[:, :, 0] = restored
            restored = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
        out = np.round(np.clip(restored, 0.0, 1.0) * scale).astype(colour.dtype)
        untouched = sum(weights.values()) == 0
        out[untouched] = colour[untouched]
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        out = np.dstack([out, pixels[:, :, 3]])
    return severity, out


class Deblurrer:
    """Restores one input after another into one folder, naming, writing and recording each result."""

    def __init__(self, router: Router, folder: Path, jpeg_quality: int, save_map: bool,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.router = router
        self.max_pixels = max_pixels
        self.folder = folder
        self.jpeg_quality = jpeg_quality
        self.save_map = save_map
        self.names = OutputNames(folder)
        self.writer = AtomicWriter()

    def process(self, path: Path, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        """The result's summary; raises InputError for an input that cannot be processed. `progress` gets the
        share of a large image restored so far."""
        source = identity(path) if path.is_file() else {}  # before reading: an input changed meanwhile is redone
        picture: Picture = read_picture(path, self.max_pixels)
        severity, out = restore(self.router, picture.pixels, progress)
        kind = "passthrough" if out is None else "restored"
        stem = self.names.claim(path.stem)
        target = self.folder / f"{stem}-{kind}.{picture.fmt}"
        publish(picture.data if out is None else encode_picture(out, picture, self.jpeg_quality), target)
        overlay = None
        if self.save_map and severity.map is not None:
            overlay = self.folder / f"{stem}-map.png"
            publish(encode_image(rgb8_map(picture.pixels, severity.map), "png"), overlay)
        fsync_dir(self.folder)
        summary = {"input": str(path), "status": kind, "output": target.name, "map": overlay and overlay.name,
                   "severity": severity.label, "restored": severity.restored, "scores": severity.scores,
                   "layout": picture.layout, "layout_kept": out is None or not picture.conversions,
                   "warnings": [] if out is None else list(picture.conversions)}
        record = {**summary, "time": round(time.time(), 3), **source, "input": str(path.resolve()),
                  "blur_map": severity.map}
        self.writer.append_line(self.folder / RECORD_NAME, json.dumps(record))
        return summary


def rgb8_map(pixels: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """The blur-map picture of an input of any layout (drawn on its 8-bit RGB)."""
    from deblurd.output.map_overlay import render

    return render(rgb8(pixels), record)


def describe(summary: dict[str, Any]) -> str:
    """One line for a person: what happened to an input and where its result is."""
    shares = ", ".join(f"{name} {share:.0%}" for name, share in summary["scores"].items())
    if summary["status"] == "passthrough":
        note = "no blurred region to restore: copied unchanged (pass-through)"
    else:
        layout = f"{summary['layout']} kept" if summary["layout_kept"] else f"written as {summary['layout']}"
        note = f"{summary['severity']} blur, restored ({layout})"
    line = f"{printable(summary['input'])}: {note} (blur map: {shares}) -> {printable(summary['output'])}"
    return line + (f", blur map -> {printable(summary['map'])}" if summary["map"] else "")


def _check_writable(folder: Path) -> list[Path]:
    """A folder deblur may write to: never a file or a daemon's output folder, whose gallery shows the daemon's
    results. Returns the folders it had to create, innermost first (removed again if nothing is written)."""
    file = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if file is not None:
        raise StoreError(f"output folder {folder}: {file} is a file, not a folder: choose a folder with -o")
    if (folder / INDEX_NAME).exists():
        raise StoreError(f"output folder {printable(folder)} holds a daemon's results ({INDEX_NAME}), and its "
                         f"gallery would show only one of the two: choose another folder with -o")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_name(folder / "write-test")
        AtomicWriter().write(probe, b"ok")
        probe.unlink()
    except OSError as exc:
        remove_if_empty(created)
        raise StoreError(f"output folder {printable(folder)} is not writable ({exc.strerror or exc}): "
                         f"choose another folder with -o") from exc
    return created


class Progress:
    """The bar on a terminal: images done, moving within a large image as the cascade restores its blocks (a
    100 MP image takes a minute), so it never sits still while work is done."""

    def __init__(self, inputs: list[Path]) -> None:
        self.count = len(inputs)
        self.bar = tqdm(total=self.count, unit="image", file=sys.stderr, disable=not sys.stderr.isatty(),
                        leave=False, mininterval=0, miniters=0, bar_format="{percentage:3.0f}%|{bar}| {desc} "
                                                                  "[{elapsed}<{remaining}, {rate_fmt}]")

    def start(self, index: int, path: Path) -> Callable[[float], None]:
        """Show image `index` (0-based) as the one in work; returns the callback for its share done."""
        self.bar.set_description_str(f"{index + 1}/{self.count} {path.name}", refresh=False)
        self.update(index)
        return lambda share: self.update(index + min(max(share, 0.0), 1.0))

    def update(self, position: float) -> None:
        self.bar.update(position - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _skip(path: Path, result: str) -> dict[str, Any]:
    return {"input": str(path), "status": "skipped", "reason": ALREADY_DONE, "output": result}


def run(args: argparse.Namespace) -> int:
    cfg = load_command_config(args)
    return_large_buffers()  # a batch of large images: each one's freed planes go back before the next (heap.py)
    found = find_inputs(args.images, args.recursive, args.output)
    inputs = found.files
    router = Router(load_pack(cfg))
    created = _check_writable(args.output)
    deblurrer = Deblurrer(router, args.output, cfg.output.jpeg_quality, args.save_map, cfg.camera.max_image_pixels)
    finished = Finished(args.output, read_records(args.output)) if args.skip_existing else None
    results: list[dict[str, Any]] = [{"input": arg, "status": "failed", "reason": NOTHING_FOUND, "error": p}
                                     for arg, p in found.problems.items()]
    results += [{"input": str(p), "status": "skipped", "reason": reason} for p, reason in found.left_out]
    for problem in found.problems.values():
        tqdm.write(f"deblurd: {problem}", file=sys.stderr)
    bar = Progress(inputs)
    for index, path in enumerate(inputs):
        earlier = finished.result_of(path) if finished else None
        if earlier is not None:
            results.append(_skip(path, earlier))
            continue
        try:
            summary = deblurrer.process(path, bar.start(index, path))
        except InputError as exc:
            tqdm.write(f"deblurd: {exc}", file=sys.stderr)
            results.append({"input": str(path), "status": "failed", "reason": failure_reason(path, exc),
                            "error": str(exc)})
            continue
        except OSError as exc:  # the output disk: every later result would fail the same way
            bar.close()
            done = sum(r["status"] in KINDS for r in results)
            raise StoreError(f"cannot write {printable(path.name)}'s result to {printable(args.output)} "
                             f"({exc.strerror or exc}); the {done} "
                             f"result(s) before it are complete: free space there, or choose another folder with -o, "
                             f"and run again with --skip-existing for the rest") from exc
        results.append(summary)
        if not args.json:
            tqdm.write(describe(summary), file=sys.stdout)
        for warning in summary["warnings"]:
            tqdm.write(f"deblurd: warning: {printable(path)}: {warning}", file=sys.stderr)
    bar.close()
    if not any(r["status"] in KINDS for r in results):
        remove_if_empty(created)
    return _report(args, results)


def _report(args: argparse.Namespace, results: list[dict[str, Any]]) -> int:
    """Write the gallery, print the summary (and what gave no new result, by reason); 1 if any input failed."""
    try:
        gallery = write_folder_gallery(args.output) if any(r["status"] in KINDS for r in results) else None
    except OSError as exc:
        raise StoreError(f"the results in {printable(args.output)} are complete, but its gallery could not be written "
                         f"({exc.strerror or exc}): free space there; the next deblur into it writes the gallery "
                         f"with these results too") from exc
    counts = {status: sum(r["status"] == status for r in results) for status in (*KINDS, "failed", "skipped")}
    reasons = reason_counts(results)
    if args.json:
        print(json.dumps({"output": str(args.output), "gallery": gallery and str(gallery), **counts,
                          "reasons": dict(reasons), "results": results}, indent=1))
    else:
        print(f"{counts['restored']} restored, {counts['passthrough']} passed through unchanged, "
              f"{counts['failed']} failed, {counts['skipped']} skipped; "
              + (f"results in {printable(args.output)}" if args.output.is_dir() else "no output folder written")
              + (f", gallery {gallery}" if gallery else ""), file=sys.stderr)
        if reasons:
            print(f"deblurd: no new result, by reason: {describe_reasons(reasons)}", file=sys.stderr)
    if counts["failed"]:
        print(f"deblurd: {counts['failed']} of {len(results) - counts['skipped']} input(s) could not be processed "
              f"(see above)",
              file=sys.stderr)
        return 1
    return 0


def read_records(folder: Path) -> list[dict[str, Any]]:
    """The folder's result records, oldest first; a line that cannot be parsed is skipped and logged."""
    path = folder / RECORD_NAME
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines() if path.exists() else [], 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s line %d is not JSON; left out of the gallery", printable(path), number)
    return records


def write_folder_gallery(folder: Path) -> Path | None:
    """The gallery of every result the folder's record lists (this run's and earlier ones)."""
    from deblurd.output.gallery import GalleryEntry, map_grid, write_gallery

    entries = []
    for number, record in enumerate(read_records(folder), 1):
        passthrough = record["status"] == "passthrough"
        source = Path(record["input"])
        input_href = record["output"] if passthrough else Path(os.path.relpath(source, folder.resolve())).as_posix()
        entries.append(GalleryEntry(id=number, time=record["time"], kind="file", severity=record["severity"],
                                    input_href=input_href, restored_href=None if passthrough else record["output"],
                                    shares=record["scores"], title=source.name, **map_grid(record["blur_map"])))
    return write_gallery(folder, entries)
