"""Latency of every shipped TFLite model, the seed papers' two generators timed beside them, and the issue's targets.

The build machine is shared and noisy, so every figure is a median of repeated runs after warm-up, and the
comparisons that matter are ratios between rows of one run, never absolute times from different runs.

    python -m tools.bench                          # every pack, 1/2/4 threads -> reports/benchmark.{md,json}
    python -m tools.bench --quick --packs photo    # a fast look while iterating (no pix2pix)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from deblurd.config import CameraConfig  # noqa: E402
from deblurd.restore.blur_map import MAP_OVERLAP, WHOLE_FRAME_PX, BlurMapper  # noqa: E402
from deblurd.restore.inference import ModelPack, working_size  # noqa: E402
from deblurd.restore.manifest import ROLES, PackError, load_manifest  # noqa: E402
from deblurd.restore.tflite import TfliteModel, interpreter_class  # noqa: E402
from deblurd.restore.tiling import tile_starts  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports"
FRAME = (CameraConfig().height, CameraConfig().width)
"""The daemon's default continuous frame (the Pi 5 targets are set for it)."""
WARMUP = 2
PAPER_REPEATS = 5  # a paper model takes seconds a run; against a 100x margin more runs add time, not information
PAPER_SIZES = {"paper autoencoder": (120, 160), "paper pix2pix": (256, 256)}  # the paper pix2pix is fixed at 256
QUICK_PAPER_SIZES = {"paper autoencoder": (60, 80)}
Ms = dict[int, float]  # thread count -> median milliseconds


@dataclass
class Row:
    """One model at one precision: what it costs in parameters, arithmetic, bytes and time."""

    model: str
    precision: str
    params: int
    macs_per_pixel: float
    size_mb: float
    tile: tuple[int, int]
    tile_ms: Ms
    frame_ms: Ms  # 640x480; the classifier: every tile of the blur map; paper models: scaled per pixel from their tile
    daemon_ms: Ms  # 640x480 through deblurd.restore.inference.ModelPack (tiling, blending, I/O); empty: not measured
    note: str = ""


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of fn in ms; the warm-up runs pay for delegate set-up and first-touch allocation."""
    for _ in range(WARMUP):
        fn()
    return 1e3 * statistics.median(timeit.repeat(fn, timer=time.perf_counter, repeat=repeats, number=1))


def invoke_ms(path: Path, threads: int, repeats: int, shape: tuple[int, int] | None = None, calls: int = 1) -> float:
    """Median ms of `calls` invokes of a .tflite file on random input, resized to 1xHxWxC (its own channels) when
    shape is given."""
    model = TfliteModel(path, threads=threads)
    if shape is not None:
        model.resize((1, *shape, model.input_shape[-1]))
    model.set_input(np.random.default_rng(0).random(model.input_shape, np.float32))
    return median_ms(lambda: [model.invoke() for _ in range(calls)], repeats)


def map_tiles(pack_dir: Path) -> int:
    """How many classifier tiles the blur map of one frame runs (a dense map's overlap is in its manifest entry)."""
    manifest = load_manifest(pack_dir)
    entry = manifest.models["classifier"]
    crop = entry.input_shape[1]
    overlap = entry.overlap or MAP_OVERLAP
    w, h = working_size(FRAME, manifest.working_width)
    return len(tile_starts(max(h, crop), crop, overlap)) * len(tile_starts(max(w, crop), crop, overlap))


def daemon_ms(pack_dir: Path, precision: str, threads: int, repeats: int) -> dict[str, float]:
    """The daemon's own path on a 640x480 luminance frame: the blur map (tiles, texture, smoothing) and each
    tiled restore; a non-blind generator is told the map's radius, so its time includes the channels built for
    each tile (the Wiener channel's FFTs)."""
    pack = ModelPack.load(pack_dir, precision, "auto", threads=threads)
    mapper = BlurMapper(pack.classifier)
    luma = np.random.default_rng(0).random(FRAME, np.float32)
    times = {"classifier": median_ms(lambda: mapper.map(luma), repeats)}
    radius = mapper.map(luma).radius_pixels(luma.shape)
    for role, restorer in pack.restorers.items():
        told = radius if restorer.needs_radius else None
        times[role] = median_ms(lambda r=restorer, t=told: r.restore(luma, t), repeats)
    return times


def bench_pack(pack_dir: Path, threads: list[int], repeats: int,
               roles: tuple[str, ...] = ROLES) -> list[Row]:
    """Rows for a pack's models, int8 and float: at the manifest tile, at 640x480, and through the daemon."""
    manifest = load_manifest(pack_dir)
    tiles = map_tiles(pack_dir)
    rows = []
    for precision in ("int8", "float"):
        try:
            daemon = {t: daemon_ms(pack_dir, precision, t, repeats) for t in threads}
            skipped = ""
        except PackError as exc:
            daemon, skipped = {}, f"daemon path not measured: {exc}"
        for role in roles:
            entry = manifest.models[role]
            path = pack_dir / (entry.file if precision == "int8" else entry.float_file)
            classifier = role == "classifier"
            whole = classifier and entry.overlap > 0 and np.prod(working_size(FRAME, manifest.working_width)) <= \
                WHOLE_FRAME_PX  # a dense map maps the frame in one pass
            rows.append(Row(
                model=f"{manifest.name}/{role}", precision=precision, params=entry.params,
                macs_per_pixel=entry.macs_per_pixel, size_mb=path.stat().st_size / 1e6,
                tile=(entry.input_shape[1], entry.input_shape[2]),
                tile_ms={t: invoke_ms(path, t, repeats) for t in threads},
                frame_ms={t: invoke_ms(path, t, repeats, None if classifier and not whole else FRAME,
                                       tiles if classifier and not whole else 1) for t in threads},
                daemon_ms={t: d[role] for t, d in daemon.items()},
                note=skipped or ("640x480 = blur map in one pass" if whole else
                                 f"640x480 = blur map of {tiles} tiles" if classifier else "")))
    return rows


def bench_papers(threads: list[int], repeats: int, sizes: dict[str, tuple[int, int]]) -> list[Row]:
    """The seed papers' generators (luminance in, untrained weights: latency does not depend on them), converted
    to float TFLite in a temp dir, timed at their own size and scaled per pixel to 640x480."""
    import keras

    from tools.train import export, models

    builders = {"paper autoencoder": models.paper_autoencoder, "paper pix2pix": models.paper_pix2pix}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (h, w) in sizes.items():
            net = builders[name]()
            inp = keras.Input((h, w, 1), batch_size=1)
            path = Path(tmp) / f"{name.split()[-1]}.float.tflite"
            with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its whole signature
                path.write_bytes(export.convert(keras.Model(inp, net(inp)), None))
            tile_ms = {t: invoke_ms(path, t, min(repeats, PAPER_REPEATS)) for t in threads}
            scale = FRAME[0] * FRAME[1] / (h * w)
            rows.append(Row(model=name, precision="float", params=net.count_params(),
                            macs_per_pixel=round(models.macs_per_pixel(net, max(h, w)), 1),
                            size_mb=path.stat().st_size / 1e6, tile=(h, w), tile_ms=tile_ms,
                            frame_ms={t: ms * scale for t, ms in tile_ms.items()}, daemon_ms={},
                            note=f"640x480 scaled per pixel from {w}x{h}"))
    return rows


def speed_ratios(rows: list[Row]) -> list[dict]:
    """Per-pixel speed-ups of the photo generators over each paper generator, thread count by thread count."""
    papers = [r for r in rows if r.model.startswith("paper")]
    ratios = []
    for ours in (r for r in rows if r.model in ("photo/semi", "photo/heavy")):
        for paper in papers:
            ratios.append({"ours": f"{ours.model} {ours.precision}", "paper": paper.model,
                           "fewer_macs": paper.macs_per_pixel / ours.macs_per_pixel,
                           "faster": {t: paper.frame_ms[t] / ms for t, ms in ours.frame_ms.items()
                                      if t in paper.frame_ms}})
    return ratios


def check_targets(rows: list[Row], ratios: list[dict]) -> list[dict]:
    """The issue's targets (set for a Raspberry Pi 5) against this run: 2 threads, 640x480, photo pack int8."""
    row = {(r.model, r.precision): r for r in rows}

    def at2(model: str, column: str) -> float | None:
        r = row.get((model, "int8"))
        return getattr(r, column).get(2) if r else None

    speedup = next((r["faster"].get(2) for r in ratios if r["ours"] == "photo/semi int8"
                    and r["paper"] == "paper autoencoder"), None)
    semi = row.get(("photo/semi", "int8"))
    checks = [("photo/semi int8, 640x480, 2 threads (ms)", at2("photo/semi", "frame_ms"), "<=", 40),
              ("photo/semi int8, daemon path 640x480, 2 threads (ms)", at2("photo/semi", "daemon_ms"), "<=", 40),
              ("photo/heavy int8, 640x480, 2 threads (ms)", at2("photo/heavy", "frame_ms"), "<=", 80),
              ("photo/heavy int8, daemon path 640x480, 2 threads (ms)", at2("photo/heavy", "daemon_ms"), "<=", 80),
              ("photo/classifier int8, blur map model alone, 2 threads (ms)", at2("photo/classifier", "frame_ms"),
               "<=", 5),
              ("photo/classifier int8, daemon blur map 640x480, 2 threads (ms)", at2("photo/classifier", "daemon_ms"),
               "<=", 5),
              ("photo/semi int8 vs paper autoencoder, per pixel, 2 threads (x faster)", speedup, ">=", 100),
              ("photo/semi MAC per pixel", semi.macs_per_pixel if semi else None, "<=", 10_000)]
    return [{"target": name, "value": value, "limit": f"{op} {limit}",
             "pass": None if value is None else (value <= limit if op == "<=" else value >= limit)}
            for name, value, op, limit in checks]


def fmt(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def table(rows: list[Row], threads: list[int]) -> str:
    """The Markdown table: one row per model and precision, one cell per measurement listing every thread count."""
    per = f"ms, {'/'.join(map(str, threads))} thr"
    head = ["model", "precision", "params", "MAC/px", "size MB", "tile", f"tile {per}", f"640x480 {per}",
            f"daemon 640x480 {per}", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.model, r.precision, f"{r.params:,}", f"{r.macs_per_pixel:,.0f}", f"{r.size_mb:.2f}",
                 f"{r.tile[1]}x{r.tile[0]}"]
        cells += [" / ".join(fmt(ms[t]) for t in threads) if ms else "—"
                  for ms in (r.tile_ms, r.frame_ms, r.daemon_ms)]
        lines.append("| " + " | ".join(cells + [r.note]) + " |")
    return "\n".join(lines)


def markdown(report: dict, rows: list[Row]) -> str:
    threads = report["threads"]
    verdict = {True: "PASS", False: "FAIL", None: "not measured"}
    parts = [f"# Benchmark\n\n`{report['command']}`\n",
             f"Measured on {report['machine']} with {report['runtime']}; median of {report['repeats']} runs after "
             f"{WARMUP} warm-up (paper models: {min(report['repeats'], PAPER_REPEATS)}), thread counts "
             f"{threads}. Model columns time `invoke()` on random input; the daemon column times "
             f"`deblurd.restore.blur_map.BlurMapper.map` and `ModelPack.restorers[label].restore` on 640x480 "
             f"luminance: resize to the pack's working width, tiles with overlap, blending). The paper generators take "
             f"luminance like ours and run as float TFLite. The targets are set for a Raspberry Pi 5: on this "
             f"shared machine read them as a sanity check, and read ratios, not absolute times.\n",
             table(rows, threads), "\n## Speed ratios (per pixel at 640x480)\n"]
    parts += [f"- {r['ours']} vs {r['paper']}: {fmt(r['fewer_macs'])}x fewer MACs; "
              + ", ".join(f"{t} thr {fmt(x)}x faster" for t, x in r["faster"].items()) for r in report["ratios"]]
    parts += ["\n## Targets (2 threads, 640x480)\n", "| target | measured | limit | result |", "|---|---|---|---|"]
    parts += [f"| {c['target']} | {'—' if c['value'] is None else fmt(c['value'])} | {c['limit']} | "
              f"{verdict[c['pass']]} |" for c in report["targets"]]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    packs = sorted(d.parent.name for d in (REPO / "models").glob("*/manifest.json"))
    p.add_argument("--packs", nargs="+", default=packs, help=f"model packs under models/ (default {' '.join(packs)})")
    p.add_argument("--threads", nargs="+", type=int, default=None, help="default 1 2 4 (--quick: 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 10, --quick: 3)")
    p.add_argument("--quick", action="store_true", help="fewer runs, 2 threads, smaller autoencoder, no pix2pix")
    p.add_argument("--json", type=Path, default=REPORTS / "benchmark.json", help="where the results go (JSON)")
    p.add_argument("--markdown", type=Path, default=REPORTS / "benchmark.md", help="where the report goes")
    args = p.parse_args(argv)
    threads = args.threads or ([2] if args.quick else [1, 2, 4])
    repeats = args.repeats or (3 if args.quick else 10)
    machine = (f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} cores, "
               f"load average {os.getloadavg()[0]:.1f} at start")
    rows = [row for pack in args.packs for row in bench_pack(REPO / "models" / pack, threads, repeats)]
    rows += bench_papers(threads, repeats, QUICK_PAPER_SIZES if args.quick else PAPER_SIZES)
    ratios = speed_ratios(rows)
    report = {"command": shlex.join(["python", "-m", "tools.bench", *argv]),
              "machine": machine,
              "runtime": interpreter_class()[1], "threads": threads, "repeats": repeats,
              "rows": [asdict(r) for r in rows], "ratios": ratios, "targets": check_targets(rows, ratios)}
    text = markdown(report, rows)
    for path, content in ((args.json, json.dumps(report, indent=2)), (args.markdown, text)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    print(text)


if __name__ == "__main__":
    main()
