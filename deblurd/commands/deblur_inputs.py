"""What `deblurd deblur` takes and what it leaves out: the inputs its arguments name, the reason each file it does
not process is left out (counted by reason at the end), and, for `--skip-existing`, the inputs an earlier run into
the same folder already finished.

An input is the same input again when its resolved path, size and modification time (ns) match what the earlier
result's record holds. That is rsync's quick check: a stat costs nothing, where a content hash would read every
input again (a 100 MP JPEG is tens of MB from an SD card) only to decide not to read it; and an input that was
edited or copied again gets a new mtime, so it is restored again rather than wrongly skipped.
"""

from __future__ import annotations

import glob
import mimetypes
import os
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from PIL import Image, UnidentifiedImageError

from deblurd.image_io import PixelLimitError
from deblurd.log_limit import printable

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
NOT_AN_IMAGE = "not an image"
UNSUPPORTED = "unsupported format"
UNREADABLE = "unreadable"
OVER_LIMIT = "over the pixel limit"
ALREADY_DONE = "already done"
NOTHING_FOUND = "nothing found"
REASONS = (ALREADY_DONE, UNSUPPORTED, NOT_AN_IMAGE, UNREADABLE, OVER_LIMIT, NOTHING_FOUND)
"""Why an input gave no new result, in the order the summary counts them."""


def suffix_reason(path: Path) -> str | None:
    """None for a JPEG or PNG name; otherwise whether the name is another image format (.webp, .heic, .tif...)
    or no image at all."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return None
    if suffix in Image.registered_extensions() or (mimetypes.guess_type(path.name)[0] or "").startswith("image/"):
        return UNSUPPORTED
    return NOT_AN_IMAGE


MAGIC = (b"\xff\xd8", b"\x89PNG\r\n\x1a\n")
"""How a JPEG and a PNG file begin: one that does and still cannot be read is damaged, not another kind of file."""


def _starts_like_an_image(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8).startswith(MAGIC)
    except OSError:
        return False


def failure_reason(path: Path, exc: BaseException) -> str:
    """Why an input could not be read: the error's own `reason` when it has one, else what the file's header
    says (a format deblur does not read, no image at all, over the pixel limit), else unreadable."""
    reason = getattr(exc, "reason", None)
    if reason in REASONS:
        return str(reason)
    if isinstance(exc, PixelLimitError):
        return OVER_LIMIT
    try:
        with warnings.catch_warnings():  # the header only, for its format: no DecompressionBombWarning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt = image.format
    except Image.DecompressionBombError:
        return OVER_LIMIT
    except UnidentifiedImageError:
        return UNREADABLE if _starts_like_an_image(path) else suffix_reason(path) or NOT_AN_IMAGE
    except (OSError, ValueError, SyntaxError):
        return UNREADABLE
    if fmt not in ("JPEG", "PNG"):
        return UNSUPPORTED
    return UNREADABLE


@dataclass
class Inputs:
    """The files to process, in order and each once; a message per folder or pattern that names no image; and
    the files a folder or pattern held that are not JPEG or PNG, with their reason."""

    files: list[Path]
    problems: dict[str, str]
    left_out: list[tuple[Path, str]]


def _split(files: Iterable[Path], output: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The JPEG and PNG files among `files`, sorted, and the other files with their reason; hidden files and
    the output folder's own are neither."""
    images, others = [], []
    for path in sorted(files):
        if path.name.startswith(".") or not path.is_file() or output in path.resolve().parents:
            continue
        reason = suffix_reason(path)
        if reason is None:
            images.append(path)
        else:
            others.append((path, reason))
    return images, others


def find_inputs(arguments: list[str], recursive: bool, output: Path) -> Inputs:
    """The files that the arguments (files, folders, glob patterns) name. Files named one by one are taken as
    given (a missing or unsupported one is reported when read)."""
    output = output.resolve()
    found: dict[Path, Path] = {}
    problems, left_out = {}, []
    for argument in arguments:
        path = Path(argument)
        others: list[tuple[Path, str]] = []
        if path.is_dir():
            files, others = _split(path.glob("**/*" if recursive else "*"), output)
            if not files:
                problems[argument] = (f"{printable(path)}: no JPEG or PNG file in this folder"
                                      + ("" if recursive else " (add --recursive to look in its sub-folders)"))
        elif not path.exists() and glob.has_magic(argument):
            files, others = _split((Path(p) for p in glob.glob(argument, recursive=recursive)), output)
            if not files:
                problems[argument] = f"{printable(argument)}: no JPEG or PNG file matches this pattern"
        else:
            files = [path]
        for file in files:
            found.setdefault(file.resolve(), file)
        left_out += [(p, reason) for p, reason in others if p.resolve() not in found]
    return Inputs(list(found.values()), problems, left_out)


def identity(path: Path) -> dict[str, Any]:
    """What a result's record holds of its input so a later `--skip-existing` knows it (see the module's doc)."""
    st = path.stat()
    return {"input": str(path.resolve()), "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns}


class Finished:
    """The inputs whose results an earlier run left complete in the folder: recorded (a record is appended only
    once its files are in place) and its files still there (a result the user deleted is made again)."""

    def __init__(self, folder: Path, records: list[dict[str, Any]]) -> None:
        self._done: dict[tuple[str, int, int], str] = {}
        for record in records:
            key = (record.get("input"), record.get("input_size"), record.get("input_mtime_ns"))
            names = [record.get("output"), record.get("map")]
            if None not in key and names[0] and all((folder / n).is_file() for n in names if n):
                self._done[cast(tuple[str, int, int], key)] = names[0]

    def result_of(self, path: Path) -> str | None:
        """The name of the result an earlier run made of this very input, or None."""
        try:
            source = identity(path)
        except OSError:
            return None
        return self._done.get((source["input"], source["input_size"], source["input_mtime_ns"]))


def reason_counts(results: list[dict[str, Any]]) -> Counter[str]:
    """How many inputs gave no new result, by reason."""
    return Counter(r["reason"] for r in results if r.get("reason"))


def describe_reasons(counts: Counter[str]) -> str:
    """'3 already done, 2 unsupported format...' in REASONS order."""
    return ", ".join(f"{counts[reason]} {reason}" for reason in REASONS if counts[reason])


def remove_if_empty(created: list[Path]) -> None:
    """Remove the folders this run created (innermost first) if they hold nothing: a run whose every input
    failed leaves no empty output folder behind."""
    for folder in created:
        try:
            os.rmdir(folder)
        except OSError:
            return
