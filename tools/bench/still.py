"""A 12 MP button still through the daemon's path: wall time per still and the daemon's peak memory.

A validation photo framed to 4608x2592 and defocused by the realistic synthesis (radius 14 px at full width) is
replayed as the camera's still. A fresh process per run (so the peak RSS is the daemon's, not this script's
synthesis) runs the same Pipeline as `deblurd run`, continuous capture off, 2 model threads, and
  - sequential: presses one at a time, each waiting for its result on disk: press-to-stored seconds and the
    restore stage alone (target: <= 6 s per still on this machine);
  - burst: as many presses at once as the stills queue holds (pipeline.still_queue_size): peak RSS while the queue
    is full and drains (target: <= 300 MB).
Prints figures only.

    .venv/bin/python -m tools.bench.still
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
RADIUS = 14.0
PI5_GMAC_PER_S = (75.0, 200.0)
"""What a Raspberry Pi 5 does with int8 models on 4 threads (the design's compute budget)."""


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_still(folder: Path, seed: int = 0) -> Path:
    """The replayed still: a validation photo at 4608x2592 through the realistic synthesis at full resolution."""
    from deblurd.optics.lens_psf import LensProfile
    from tools.data import sources as data
    from tools.eval.still import FRAME, degrade, fit, pick_photos, still_sensor

    path = folder / "still.png"
    rng = np.random.default_rng(seed)
    photo = fit(data.load_rgb(pick_photos(1)[0]), FRAME).astype(np.float32) / 255.0
    captured = degrade(photo, RADIUS, LensProfile.draw(rng), still_sensor(rng, FRAME[0], 640), rng)
    cv2.imwrite(str(path), cv2.cvtColor(captured, cv2.COLOR_RGB2BGR))
    return path


def child(replay: Path, output: Path, presses: int, burst: bool, threads: int, working_width: bool = False) -> dict:
    """Run the daemon's Pipeline on the replayed still and press the button `presses` times; working_width: the
    path before the cascade (the Router at the working width, the correction upsampled), for comparison."""
    from deblurd.capture.camera import ReplaySource
    from deblurd.cli import load_pack
    from deblurd.config import Config
    from deblurd.daemon.pipeline import Pipeline
    from deblurd.output.store import ResultStore

    cfg = Config.model_validate({"output": {"dir": str(output), "min_free_mb": 10, "max_per_minute": 0},
                                 "models": {"threads": threads}, "lens": {"mode": "fixed"},
                                 "pipeline": {"still_queue_size": max(presses, 1)}})
    pack = load_pack(cfg)
    invocations = count_invocations()
    store = ResultStore(cfg.output)
    store.open()
    source = ReplaySource(replay, cfg.camera.fps, (cfg.camera.width, cfg.camera.height))
    source.open()
    pipeline = Pipeline(source, pack, store, cfg)
    pipeline.set_continuous(False)
    if working_width:
        pipeline.stills = None
    rss_loaded = _status_mb("VmRSS")
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    walls = []
    start = time.perf_counter()
    for n in range(1 if burst else presses):
        t0 = time.perf_counter()
        for _ in range(presses if burst else 1):
            if not pipeline.request_still():
                raise RuntimeError("a press was refused: the stills queue is full")
        target = presses if burst else n + 1
        while pipeline.stats.frames_out < target:
            if not runner.is_alive():
                raise RuntimeError("the pipeline stopped")
            time.sleep(0.02)
        walls.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    pipeline.stop()
    runner.join(10)
    stages = pipeline.stats.stage_totals
    n = max(pipeline.stats.processed, 1)
    models = [(pack.classifier.model, pack.manifest.models["classifier"].macs_per_pixel)] + [
        (r.model, pack.manifest.models[label].macs_per_pixel) for label, r in pack.restorers.items()]
    gmacs = sum(invocations.get(id(m), 0) * m.input_shape[1] * m.input_shape[2] * macs for m, macs in models) / 1e9
    return {"presses": presses, "burst": burst, "wall_s": [round(w, 2) for w in walls], "total_s": round(total, 2),
            "mean_stage_s": {k: round(v / n, 3) for k, v in stages.items()},
            "routes": {k: v.get("out", 0) for k, v in pipeline.stats.routes.items()},
            "rss_loaded_mb": round(rss_loaded), "peak_rss_mb": round(_status_mb("VmHWM")),
            "gmac_per_still": round(gmacs / n, 1)}


def count_invocations() -> dict[int, int]:
    """Model runs per TfliteModel (by id), counted from now on: MACs per still = runs x input pixels x the
    manifest's MACs per pixel."""
    from deblurd.restore.tflite import TfliteModel

    counts: dict[int, int] = {}
    invoke = TfliteModel.invoke

    def counted(model: TfliteModel) -> None:
        counts[id(model)] = counts.get(id(model), 0) + 1
        invoke(model)

    TfliteModel.invoke = counted  # type: ignore[method-assign]
    return counts


def run_child(replay: Path, presses: int, burst: bool, threads: int, working_width: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="deblurd-still-out-") as out:
        command = [sys.executable, "-m", "tools.bench.still", "--child", str(replay), "--output", out,
                   "--presses", str(presses), "--threads", str(threads)] + (["--burst"] if burst else []) \
            + (["--working-width"] if working_width else [])
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"benchmark child failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=3, help="sequential presses (timing)")
    parser.add_argument("--queue", type=int, default=8, help="presses at once (memory with a full stills queue)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--burst", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--working-width", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        print(json.dumps(child(args.child.parent, args.output, args.presses, args.burst, args.threads,
                               args.working_width)))
        return 0
    with tempfile.TemporaryDirectory(prefix="deblurd-still-") as tmp:
        replay = make_still(Path(tmp))
        before = run_child(replay, args.presses, False, args.threads, working_width=True)
        before_burst = run_child(replay, args.queue, True, args.threads, working_width=True)
        sequential = run_child(replay, args.presses, False, args.threads)
        burst = run_child(replay, args.queue, True, args.threads)
    print(f"12 MP still (4608x2592, realistic defocus radius {RADIUS:g} px), {args.threads} model threads")
    print(f"before (working-width route, correction upsampled): press-to-stored "
          f"{', '.join(f'{w:.2f}' for w in before['wall_s'])} s, peak RSS {before['peak_rss_mb']} MB; burst of "
          f"{args.queue}: {before_burst['total_s']:.1f} s, peak RSS {before_burst['peak_rss_mb']} MB")
    print(f"sequential presses: press-to-stored {', '.join(f'{w:.2f}' for w in sequential['wall_s'])} s; "
          f"mean per still: " + ", ".join(f"{k} {v:.2f} s" for k, v in sequential["mean_stage_s"].items())
          + " (target: <= 6 s per still)")
    print(f"routes {sequential['routes']}; RSS with the pack loaded {sequential['rss_loaded_mb']} MB, "
          f"peak {sequential['peak_rss_mb']} MB")
    low, high = (sequential["gmac_per_still"] / rate for rate in PI5_GMAC_PER_S)
    print(f"models: {sequential['gmac_per_still']:.0f} GMAC per still (before: {before['gmac_per_still']:.0f}); "
          f"a Pi 5 at {PI5_GMAC_PER_S[0]:g}-{PI5_GMAC_PER_S[1]:g} GMAC/s (int8, 4 threads) needs "
          f"{high:.1f}-{low:.1f} s for them, image handling not included")
    print(f"burst of {args.queue} presses (a full stills queue): all stored in {burst['total_s']:.1f} s, "
          f"peak RSS {burst['peak_rss_mb']} MB (target: <= 300 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
