"""How much of the models' speed the daemon keeps: end-to-end fps vs model-only fps, memory, idle CPU.

Runs the same Pipeline as `deblurd run` on a replay source, writing to a temporary folder. Like a camera,
the source is paced: a little faster (x1.25) than the models' rate from a short warm-up, so inference never
starves, but never above the camera's 60 fps:
  - end-to-end fps (capture, queue, classify, restore, store) against the model-only rate measured on the
    same frames in the same run, or against the source's pace when the models outrun the camera
    (target: at least 90 %);
  - resident memory after the run (target: at most 300 MB after 1,000 frames);
  - CPU used while the governor holds the daemon paused (target: at most 2 % of one core).
Prints figures only.

    .venv/bin/python -m tools.bench.pipeline --frames 1000
    .venv/bin/python -m tools.bench.pipeline --frames 200 --route heavy --precision float
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from deblurd.capture.camera import SAMPLES_DIR, ReplaySource
from deblurd.cli import load_pack
from deblurd.config import Config
from deblurd.daemon.pipeline import Pipeline, SteadyDecision
from deblurd.output.store import ResultStore
from deblurd.restore.manifest import RESTORER_ROLES
from deblurd.restore.router import Router

HEADROOM = 1.25
CAMERA_MAX_FPS = 60.0
WARMUP_FRAMES = 12


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class PausedGovernor:
    def decide(self) -> SteadyDecision:
        return SteadyDecision(mode="pause")


def _pipeline(cfg: Config, router: Router, replay: Path, governor=None) -> Pipeline:
    store = ResultStore(cfg.output)
    store.open()
    source = ReplaySource(replay, cfg.camera.fps, (cfg.camera.width, cfg.camera.height))
    source.open()
    return Pipeline(source, router.pack, store, cfg, governor=governor, router=router)


def _model_fps(router: Router, replay: Path, size: tuple[int, int]) -> float:
    """Frames per second of route() alone over the replay frames (warm-up; sets the source's pace)."""
    source = ReplaySource(replay, 1000.0, size)
    source.open()
    frames = [source.read(1.0).pixels for _ in range(WARMUP_FRAMES)]
    source.close()
    start = time.perf_counter()
    for rgb in frames:
        router.route(rgb)
    return WARMUP_FRAMES / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--replay", type=Path, default=SAMPLES_DIR)
    parser.add_argument("--precision", choices=["int8", "float"], default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--route", choices=["auto", *RESTORER_ROLES], default="auto",
                        help="auto = the classifier decides; semi/heavy = force every frame through that generator")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="deblurd-bench-") as tmp:
        cfg = Config.model_validate({"output": {"dir": tmp, "min_free_mb": 10, "max_per_minute": 0},
                                     "models": {"precision": args.precision, "threads": args.threads},
                                     "pipeline": {"max_frames": args.frames}, "lens": {"mode": "fixed"}})
        router = Router(load_pack(cfg), forced=None if args.route == "auto" else args.route)
        cfg.camera.fps = min(CAMERA_MAX_FPS, HEADROOM * _model_fps(router, args.replay,
                                                                  (cfg.camera.width, cfg.camera.height)))
        rss_start = rss_mb()
        pipeline = _pipeline(cfg, router, args.replay)
        start = time.perf_counter()
        stats = pipeline.run()
        wall = time.perf_counter() - start
        pipeline.source.close()
        model_s = stats.stage_totals.get("classify_s", 0.0) + stats.stage_totals.get("restore_s", 0.0)
        end_to_end, model_only = stats.processed / wall, stats.processed / max(model_s, 1e-9)
        print(f"source paced at {cfg.camera.fps:.1f} fps ({HEADROOM}x the warm-up model rate, at most "
              f"{CAMERA_MAX_FPS:.0f})")
        print(f"frames {stats.processed}, routes {({k: v['out'] for k, v in stats.routes.items()})}, "
              f"dropped {stats.dropped or 'none'}")
        print("mean per frame: " + ", ".join(f"{k} {1000 * v / max(stats.processed, 1):.1f} ms"
                                             for k, v in stats.stage_totals.items()))
        bound, limit = (model_only, "model-only") if model_only <= cfg.camera.fps else (cfg.camera.fps, "source pace")
        print(f"end-to-end {end_to_end:.2f} fps, model-only {model_only:.2f} fps, source {cfg.camera.fps:.1f} fps: "
              f"{100 * end_to_end / bound:.0f} % of the {limit} limit (target >= 90 %)")
        print(f"resident memory {rss_mb():.0f} MB after {stats.processed} frames "
              f"(was {rss_start:.0f} MB with models loaded; target <= 300 MB after 1000)")

        cfg.pipeline.max_frames = None
        paused = _pipeline(cfg, router, args.replay, PausedGovernor())
        thread = threading.Thread(target=paused.run, daemon=True)
        thread.start()
        time.sleep(1.0)
        cpu0, t0 = cpu_s(), time.perf_counter()
        time.sleep(args.idle_seconds)
        idle = 100 * (cpu_s() - cpu0) / (time.perf_counter() - t0)
        paused.stop()
        thread.join(10)
        paused.source.close()
        print(f"idle CPU while paused {idle:.2f} % of one core over {args.idle_seconds:.0f} s (target <= 2 %)")


if __name__ == "__main__":
    main()
