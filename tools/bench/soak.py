"""Soak and storage figures: does a long `deblurd run` grow, and what does one stored result cost the card?

Soak: runs `deblurd run` as a real process on the bundled replay frames and samples its resident memory, open
file descriptors and threads from /proc once a second; prints them after warm-up and at the end, and the growth.
Storage: saves results of the bundled frames (640x480, routed and restored by the shipped models) through the
store in this process,
counting fsync calls, and prints files, bytes, fsyncs and milliseconds per result, and what the default storage
policy costs per day. Prints figures only (no pass/fail): run it on a quiet machine.

    .venv/bin/python -m tools.bench.soak --frames 2000
    .venv/bin/python -m tools.bench.soak --storage-only --results 200
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARMUP_FRACTION = 0.1
CARD_BYTES = 32e9


def proc_sample(pid: int) -> dict[str, float]:
    """Resident memory (MB), open file descriptors and threads of a running process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(status["Threads"])}


def soak(frames: int, fps: float, size: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "soak.toml"
        config.write_text(f'[camera]\nsource = "replay"\nfps = {fps}\nwidth = {size[0]}\nheight = {size[1]}\n'
                          f'[output]\ndir = "{tmp}/out"\nmax_per_minute = 0\nmax_results = 200\nmin_free_mb = 0\n'
                          f'[thermal]\nenabled = false\n[service]\nstatus_interval_s = 1.0\n')
        proc = subprocess.Popen([sys.executable, "-m", "deblurd", "run", "--config", str(config), "--frames",
                                 str(frames)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[int, dict[str, float]]] = []
        index = Path(tmp) / "out" / "status.json"
        started = time.monotonic()
        while proc.poll() is None:
            try:
                done = int(index.read_text().split('"frames_out":')[1].split(",")[0]) if index.exists() else 0
                samples.append((done, proc_sample(proc.pid)))
            except (OSError, IndexError, ValueError, KeyError):
                pass
            time.sleep(1.0)
        took = time.monotonic() - started
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.returncode != 0 or not samples:
            sys.exit(f"deblurd run failed ({proc.returncode}): {stderr[-2000:]}")
    after = [s for n, s in samples if n >= frames * WARMUP_FRACTION] or [samples[0][1]]
    warm, end = after[0], after[-1]
    print(f"soak: {frames} frames at {size[0]}x{size[1]} in {took:.0f} s ({frames / took:.1f} fps), "
          f"{len(samples)} samples, the first after {frames * WARMUP_FRACTION:.0f} stored frames as the baseline")
    for key in ("rss_mb", "fds", "threads"):
        growth = (end[key] - warm[key]) / warm[key] * 100 if warm[key] else 0.0
        print(f"  {key:<8} after warm-up {warm[key]:7.1f}   end {end[key]:7.1f}   "
              f"most {max(s[key] for s in after):7.1f}   growth {end[key] - warm[key]:+.1f} ({growth:+.1f} %)")


def storage(results: int) -> None:
    """Per-result cost of the store on the bundled frames, with fsyncs counted."""
    import cv2

    from deblurd.capture.camera import SAMPLES_DIR
    from deblurd.cli import load_pack
    from deblurd.config import Config, OutputConfig
    from deblurd.frames import Frame
    from deblurd.output.store import Result, ResultStore
    from deblurd.restore.router import Router
    from tools.data.sources import load_rgb

    router = Router(load_pack(Config()))
    frames = []
    for path in sorted(SAMPLES_DIR.glob("*.jpg")):
        rgb = cv2.resize(load_rgb(path), (640, 480), interpolation=cv2.INTER_AREA)
        severity, out = router.route(rgb)
        frames.append((rgb, severity, None if severity.label == "sharp" else out))
    calls = {"fsync": 0}
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls["fsync"] += 1
        real_fsync(fd)

    with tempfile.TemporaryDirectory(dir=os.environ.get("SOAK_DIR")) as tmp:
        store = ResultStore(OutputConfig(dir=Path(tmp) / "out", min_free_mb=10))
        store.open()
        os.fsync = counting_fsync
        started = time.perf_counter()
        try:
            for i in range(results):
                rgb, severity, restored = frames[i % len(frames)]
                store.save(Result(Frame(rgb, i, time.time()), severity, restored))
        finally:
            os.fsync = real_fsync
        took = time.perf_counter() - started
        files = [p for p in (Path(tmp) / "out").rglob("*") if p.is_file() and p.parent.name != "out"]
        apparent = sum(p.stat().st_size for p in files)
        allocated = sum(p.stat().st_blocks * 512 for p in files)
    per = allocated / results
    routes = ", ".join(f"{f[1].label}" for f in frames)
    print(f"storage: {results} results of the bundled frames at 640x480 (routes {routes}), "
          f"JPEG {store.cfg.jpeg_quality}")
    print(f"  per result: {len(files) / results:.2f} files, {apparent / results / 1024:.1f} KiB "
          f"({per / 1024:.1f} KiB allocated), {calls['fsync'] / results:.2f} fsyncs, "
          f"{took / results * 1000:.1f} ms")
    policy = getattr(store.cfg, "max_per_minute", 0)
    if policy:
        day = per * policy * 60 * 24
        print(f"  default policy ({policy} continuous results a minute): {day / 1e6:.0f} MB a day, "
              f"{day * 30 / 1e9:.1f} GB in 30 days ({day * 30 / CARD_BYTES:.0%} of a 32 GB card)")
    print(f"  storing every frame at 10 fps: {per * 10 * 86400 / 1e9:.1f} GB a day")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames for the soak run")
    parser.add_argument("--fps", type=float, default=60.0, help="replay rate (as fast as the models allow)")
    parser.add_argument("--size", default="320x240", help="continuous frame size for the soak run")
    parser.add_argument("--results", type=int, default=120, help="results for the storage figures")
    parser.add_argument("--storage-only", action="store_true", help="skip the soak run")
    args = parser.parse_args(argv)
    storage(args.results)
    if not args.storage_only:
        width, height = (int(v) for v in args.size.split("x"))
        soak(args.frames, args.fps, (width, height))


if __name__ == "__main__":
    main()
