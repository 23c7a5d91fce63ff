"""Draw docs/gallery.png for the README: the gallery of a real daemon run, opened in headless Chromium.

Runs the daemon's Pipeline on the bundled replay samples with the shipped photo pack (every frame stored, one
button still), copies the output folder elsewhere as a user would, opens the copy's index.html over file:// in
Debian's chromium (or chromium-headless-shell) with the blur map shown, and saves the screenshot. The gallery
browser test drives the same functions. Run it again when the gallery's look or the models change:

    .venv/bin/python -m tools.figures.gallery
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from deblurd.capture.camera import SAMPLES_DIR, ReplaySource
from deblurd.config import REPO_MODELS_DIR, Config
from deblurd.daemon.pipeline import Pipeline
from deblurd.output.store import ResultStore

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM_NAMES = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT_S = 120
WINDOW = (1024, 720)


def record_results(out: Path, frames: int = 8, size: tuple[int, int] = (320, 240), stills: int = 1,
                   pack: Any = None) -> Pipeline:
    """Run the daemon's pipeline on the bundled replay samples into `out`, storing every frame (button stills
    first), with the shipped photo pack unless one is given; returns the finished pipeline."""
    from deblurd.restore.inference import ModelPack

    cfg = Config.model_validate({"output": {"dir": str(out), "max_per_minute": 0, "min_free_mb": 0},
                                 "camera": {"source": "replay", "width": size[0], "height": size[1], "fps": 30.0},
                                 "pipeline": {"max_frames": frames + stills}, "thermal": {"enabled": False}})
    store = ResultStore(cfg.output)
    store.open()
    source = ReplaySource(SAMPLES_DIR, cfg.camera.fps, size)
    source.open()
    pack = pack or ModelPack.load(REPO_MODELS_DIR / "photo", "int8", "auto", threads=2)
    pipe = Pipeline(source, pack, store, cfg)
    for _ in range(stills):
        pipe.request_still()
    try:
        pipe.run()
    finally:
        source.close()
    return pipe


def find_chromium() -> str | None:
    """The first Chromium binary on PATH (apt-get install chromium, or chromium-headless-shell), or None."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def run_chromium(page: Path, *flags: str, fragment: str = "", window: tuple[int, int] = WINDOW) -> str:
    """Open `page` over file:// in headless Chromium, let its scripts and images finish (virtual time), and
    return stdout; no network is reachable from the page (a proxy that refuses everything)."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError(f"no Chromium binary ({', '.join(CHROMIUM_NAMES)}) on PATH: "
                                f"apt-get install chromium-headless-shell")
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000", f"--window-size={window[0]},{window[1]}",
               *flags, page.resolve().as_uri() + fragment]
    done = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{binary} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def screenshot(page: Path, png: Path, fragment: str = "", window: tuple[int, int] = WINDOW) -> Path:
    """A PNG of `page` as headless Chromium draws it."""
    run_chromium(page, f"--screenshot={png.resolve()}", fragment=fragment, window=window)
    if not png.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot to {png}")
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--out", type=Path, default=DOCS / "gallery.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        record_results(out, args.frames)
        copy = Path(shutil.copytree(out, Path(tmp) / "deblurd-output"))
        screenshot(copy / "index.html", args.out, fragment="#view=side&map=1")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
