"""restore image files offline with the same models and routing (JPEG and PNG files, folders, patterns)

Nothing is ever overwritten: each input gets names of its own in the output folder, also against the results
of earlier runs. A damaged input, or one over camera.max_image_megapixels (checked from its header before it is
decoded), is refused with its reason while the others are processed (exit 1). Names are shown with their control
characters escaped, so a file name cannot drive the terminal. A result
keeps its input's layout (bit depth, alpha, grey), EXIF and ICC profile; an input with no blurred region is
copied byte for byte as <name>-passthrough.<ext>. The folder's deblur.jsonl gets a line per result once its
files are in place, and its gallery (index.html) shows every result the folder holds.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
from tqdm import tqdm

from deblurd.atomic import AtomicWriter, fsync_dir, temp_name
from deblurd.config import add_config_argument
from deblurd.frames import Severity
from deblurd.image_io import MAX_IMAGE_PIXELS, InputError, Picture, encode_picture, read_picture, rgb8
from deblurd.log_limit import printable
from deblurd.commands.loading import load_command_config, load_pack
from deblurd.restore.router import Router
from deblurd.output.layout import INDEX_NAME
from deblurd.output.store import StoreError, encode_image

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  deblurd deblur photo1.jpg photo2.png -o restored/
  deblurd deblur ~/pictures --recursive -o restored/     every JPEG and PNG in the folder and its sub-folders
  deblurd deblur 'shots/*.jpg' --save-map -o restored/   a quoted pattern; also <name>-map.png, the blur map
  deblurd deblur shots/ --json -o restored/ > summary.json
"""
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
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


def _images_in(files: list[Path], output: Path) -> list[Path]:
    """The JPEG and PNG files among `files`, sorted, leaving out hidden files and the output folder's own."""
    return sorted(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                  and p.is_file() and output not in p.resolve().parents)


def find_inputs(arguments: list[str], recursive: bool, output: Path) -> tuple[list[Path], dict[str, str]]:
    """The files that the arguments (files, folders, glob patterns) name, in order and each once, and a message
    per folder or pattern that names none. Files are taken as given (a missing one is reported when read)."""
    output = output.resolve()
    found: dict[Path, Path] = {}
    problems = {}
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files = _images_in(list(path.glob("**/*" if recursive else "*")), output)
            if not files:
                problems[argument] = (f"{printable(path)}: no JPEG or PNG file in this folder"
                                      + ("" if recursive else " (add --recursive to look in its sub-folders)"))
        elif not path.exists() and glob.has_magic(argument):
            files = _images_in([Path(p) for p in glob.glob(argument, recursive=recursive)], output)
            if not files:
                problems[argument] = f"{printable(argument)}: no JPEG or PNG file matches this pattern"
        else:
            files = [path]
        for file in files:
            found.setdefault(file.resolve(), file)
    return list(found.values()), problems


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


def restore(router: Router, pixels: np.ndarray) -> tuple[Severity, Optional[np.ndarray]]:
    """Route pixels of any layout; None when no region is restored (the file then passes through as it is).
    8-bit RGB takes the daemon's own path; other layouts restore their luminance in float at their own depth,
    and an alpha channel is kept as it is."""
    colour = pixels if pixels.ndim == 2 else np.ascontiguousarray(pixels[:, :, :3])
    if colour.ndim == 3 and colour.dtype == np.uint8:
        severity, out = router.route_still(colour)  # a large image: the stills' cascade
        if out is colour:
            return severity, None
    else:
        scale = float(np.iinfo(colour.dtype).max)
        values = colour.astype(np.float32) / scale
        ycrcb = None if values.ndim == 2 else cv2.cvtColor(values, cv2.COLOR_RGB2YCrCb)
        luma = values if ycrcb is None else np.ascontiguousarray(ycrcb[:, :, 0])
        severity, weights = router.decide(luma)
        if not weights:
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

    def process(self, path: Path) -> dict[str, Any]:
        """The result's summary; raises InputError for an input that cannot be processed."""
        picture: Picture = read_picture(path, self.max_pixels)
        severity, out = restore(self.router, picture.pixels)
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
                   "severity": severity.label, "scores": severity.scores, "layout": picture.layout,
                   "warnings": list(picture.warnings)}
        record = {**summary, "time": round(time.time(), 3), "input": str(path.resolve()), "blur_map": severity.map}
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
        note = f"{summary['severity']} blur, restored ({summary['layout']} kept)"
    line = f"{printable(summary['input'])}: {note} (blur map: {shares}) -> {printable(summary['output'])}"
    return line + (f", blur map -> {printable(summary['map'])}" if summary["map"] else "")


def _check_writable(folder: Path) -> None:
    """A folder deblur may write to: never a daemon's output folder, whose gallery shows the daemon's results."""
    if (folder / INDEX_NAME).exists():
        raise StoreError(f"output folder {printable(folder)} holds a daemon's results ({INDEX_NAME}), and its "
                         f"gallery would show only one of the two: choose another folder with -o")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_name(folder / "write-test")
        AtomicWriter().write(probe, b"ok")
        probe.unlink()
    except OSError as exc:
        raise StoreError(f"output folder {printable(folder)} is not writable ({exc.strerror or exc}): "
                         f"choose another folder with -o") from exc


def run(args: argparse.Namespace) -> int:
    cfg = load_command_config(args)
    inputs, problems = find_inputs(args.images, args.recursive, args.output)
    router = Router(load_pack(cfg))
    _check_writable(args.output)
    deblurrer = Deblurrer(router, args.output, cfg.output.jpeg_quality, args.save_map, cfg.camera.max_image_pixels)
    results: list[dict[str, Any]] = [{"input": arg, "status": "failed", "error": p} for arg, p in problems.items()]
    for problem in problems.values():
        tqdm.write(f"deblurd: {problem}", file=sys.stderr)
    bar = tqdm(inputs, unit="image", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False, mininterval=0,
               miniters=1)  # every image is worth a refresh (and a fast one would otherwise show none)
    for path in bar:
        bar.set_postfix_str(printable(path.name), refresh=False)
        try:
            summary = deblurrer.process(path)
        except InputError as exc:
            tqdm.write(f"deblurd: {exc}", file=sys.stderr)
            results.append({"input": str(path), "status": "failed", "error": str(exc)})
            continue
        except OSError as exc:  # the output disk: every later result would fail the same way
            bar.close()
            done = sum(r["status"] != "failed" for r in results)
            raise StoreError(f"cannot write {printable(path.name)}'s result to {printable(args.output)} "
                             f"({exc.strerror or exc}); the {done} "
                             f"result(s) before it are complete: free space there, or choose another folder with -o, "
                             f"and run again for the rest") from exc
        results.append(summary)
        if not args.json:
            tqdm.write(describe(summary), file=sys.stdout)
        for warning in summary["warnings"]:
            tqdm.write(f"deblurd: warning: {printable(path)}: {warning}", file=sys.stderr)
    bar.close()
    try:
        gallery = write_folder_gallery(args.output) if any(r["status"] != "failed" for r in results) else None
    except OSError as exc:
        raise StoreError(f"the results in {printable(args.output)} are complete, but its gallery could not be written "
                         f"({exc.strerror or exc}): free space there; the next deblur into it writes the gallery "
                         f"with these results too") from exc
    counts = {status: sum(r["status"] == status for r in results) for status in (*KINDS, "failed")}
    if args.json:
        print(json.dumps({"output": str(args.output), "gallery": gallery and str(gallery), **counts,
                          "results": results}, indent=1))
    else:
        print(f"{counts['restored']} restored, {counts['passthrough']} passed through unchanged, "
              f"{counts['failed']} failed; results in {printable(args.output)}"
              + (f", gallery {gallery}" if gallery else ""), file=sys.stderr)
    if counts["failed"]:
        print(f"deblurd: {counts['failed']} of {len(results)} input(s) could not be processed (see above)",
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


def write_folder_gallery(folder: Path) -> Optional[Path]:
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
