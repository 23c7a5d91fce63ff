"""What keeping the gallery current costs the daemon: time and bytes written per refresh over a large index.

Builds an output folder with N results (index lines and sidecars with a 20x15 blur map, as the store writes them;
no images, which the gallery never reads) spread over some days, then times the daemon's GalleryUpdater:
  - cold: the first refresh after a start (reads every sidecar, writes every page);
  - one new result: the steady state, one refresh every REFRESH_S while results arrive;
  - nothing new: the refresh the store thread asks for while idle;
  - after retention pruned the oldest results;
and, where Chromium is installed, how long its pages take to open: headless Chromium from start to the rendered
page, for index.html and the largest day page, beside the same for an empty page (the browser's own start).
Prints figures only; run it on the Pi to get the Pi's figures.

    .venv/bin/python -m tools.bench.gallery --results 10000 --days 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from deblurd.config import OutputConfig
from deblurd.output.gallery import GALLERY_DIR, INDEX_PAGE, GalleryUpdater
from deblurd.output.layout import INDEX_NAME, IndexEntry
from deblurd.output.store import ResultStore
from tools.figures.gallery import find_chromium, run_chromium

ROWS, COLS = 15, 20


def fake_output(out: Path, results: int, days: int, start: float) -> tuple[dict, str]:
    """An output folder as the store leaves it: an index line and a sidecar per result, spread over `days`;
    returns one more result (its index entry and sidecar text, not written) for the benchmark to add."""
    step = days * 86400 / results
    made = []
    for n in range(1, results + 2):
        when = start + n * step
        stamp = time.localtime(when)
        day = time.strftime("%Y-%m-%d", stamp)
        base = f"{time.strftime('%H%M%S', stamp)}-{n:06d}"
        severity = ("sharp", "semi", "heavy")[n % 3]
        files = {"input": f"{day}/{base}-input.jpg", "sidecar": f"{day}/{base}.json"}
        if severity != "sharp":
            files["restored"] = f"{day}/{base}-restored.jpg"
        entry = {"id": n, "time": round(when, 3), "kind": "still" if n % 50 == 0 else "continuous",
                 "severity": severity, "passthrough": severity == "sharp", "files": files}
        rows = ["".join("smh"[(n + i + j) % 3] for j in range(COLS)) for i in range(ROWS)]
        sidecar = {**entry, "frame_seq": n, "scores": {"sharp": 0.3, "semi": 0.5, "heavy": 0.2},
                   "blur_map": {"rows": rows, "legend": {"s": "sharp", "m": "semi", "h": "heavy"}, "tile_px": 32,
                                "starts": {"y": [32 * i for i in range(ROWS)], "x": [32 * j for j in range(COLS)]},
                                "working_size": [640, 480]},
                   "model": "photo/classifier@2.0", "timings": {"classify_s": 0.02, "restore_s": 0.08},
                   "lens_position": 1.5, "source": "picamera2", "camera": {}, "thermal": {"temp_c": 61.2}}
        made.append((entry, json.dumps(sidecar, indent=1)))
    for entry, sidecar in made[:-1]:
        (out / entry["files"]["sidecar"]).parent.mkdir(exist_ok=True)
        (out / entry["files"]["sidecar"]).write_text(sidecar)
    (out / INDEX_NAME).write_text("".join(json.dumps(entry) + "\n" for entry, _ in made[:-1]))
    return made[-1]


def _timed(label: str, updater: GalleryUpdater, out: Path) -> None:
    files, size = updater.pages.files_written, updater.pages.bytes_written
    t0 = time.perf_counter()
    updater.refresh()
    elapsed = time.perf_counter() - t0
    print(f"  {label:<34} {elapsed * 1000:8.1f} ms  {updater.pages.files_written - files:4d} file(s), "
          f"{(updater.pages.bytes_written - size) / 1024:7.1f} KB written")


def _browser(out: Path, entries: list[dict]) -> None:
    empty = out / "empty.html"
    empty.write_text("<!doctype html><title>empty</title>")
    (day_name, largest_day), = Counter(time.strftime("%Y-%m-%d", time.localtime(e["time"])) for e in entries
                                       ).most_common(1)
    day = out / GALLERY_DIR / f"{day_name}.html"
    print("opening in headless Chromium (start to rendered page, best of 3):")
    for label, page in (("an empty page", empty), ("index.html", out / INDEX_PAGE),
                        (f"a day page ({largest_day} results)", day)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            run_chromium(page, "--dump-dom")
            best = min(best, time.perf_counter() - t0)
        print(f"  {label:<34} {best * 1000:8.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=10000)
    parser.add_argument("--days", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        new, sidecar = fake_output(out, args.results, args.days, time.time() - args.days * 86400)
        store = ResultStore(OutputConfig(dir=out, min_free_mb=0))
        store.open()
        print(f"gallery refresh over {len(store.entries)} results on {args.days} day(s):")
        updater = GalleryUpdater(store)
        _timed("first refresh (no gallery yet)", updater, out)
        updater = GalleryUpdater(store)
        _timed("first refresh after a restart", updater, out)
        (out / new["files"]["sidecar"]).write_text(sidecar)
        store.entries.append(IndexEntry.parse(new))
        _timed("one new result", updater, out)
        _timed("nothing new", updater, out)
        del store.entries[:100]
        _timed("100 oldest pruned", updater, out)
        index = out / INDEX_PAGE
        data = sorted((out / GALLERY_DIR / "data").iterdir(), key=lambda p: p.stat().st_size)
        total = sum(p.stat().st_size for p in (out / GALLERY_DIR).rglob("*") if p.is_file()) + index.stat().st_size
        print(f"  index.html {index.stat().st_size / 1024:.0f} KB; {len(data)} data file(s), largest "
              f"{data[-1].stat().st_size / 1024:.0f} KB; gallery total {total / 1024 / 1024:.1f} MB")
        if find_chromium() is not None:
            _browser(out, [e.to_json() for e in store.entries])


if __name__ == "__main__":
    main()
