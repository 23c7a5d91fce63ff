"""Arm vs x86 parity of the shipped models: a Pi must compute what the tests on x86 saw.

    python -m tools.bench.parity run OUT.npz [--inputs REF.npz]   run every model of every pack on fixed inputs
    python -m tools.bench.parity compare REF.npz OTHER.npz         largest difference, share within 1 level

`run` without --inputs makes the inputs (the bundled samples' luminance, fitted to each model's input) and stores
them beside the outputs, so a second machine given --inputs runs the very same bytes; JPEG decoding and resizing
stay out of the model comparison. Each run records which kernels ran each model (XNNPACK or TFLite's builtin
ones, which round int8 differently on Arm and x86): a comparison counts only XNNPACK on both, what a Pi runs;
XNNPACK stays out silently where it cannot read the CPU. The routing decisions on the samples are recorded end to
end (each machine decodes the samples itself), as the daemon would make them. deploy/pi-rehearsal.sh runs it in
the arm64 rootfs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deblurd.capture.camera import SAMPLES_DIR
from deblurd.restore.inference import ModelPack, rgb_to_luma
from deblurd.restore.router import Router
from deblurd.restore.tflite import TfliteModel, interpreter_class
from tools import REPO

MODELS = REPO / "models"
WITHIN_TARGET = 0.999
"""Share of output pixels within 1 level of the reference that issue 21 asks for."""


def sample_lumas() -> dict[str, np.ndarray]:
    """Luminance (uint8) of each bundled sample, by file name."""
    out = {}
    for path in sorted(SAMPLES_DIR.glob("*.jpg")):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"parity: cannot decode {path}: reinstall the package's samples")
        out[path.name] = np.round(rgb_to_luma(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) * 255).astype(np.uint8)
    return out


def fit(luma: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre square of a luminance image, area-resized to a model's input."""
    side = min(luma.shape)
    top, left = (luma.shape[0] - side) // 2, (luma.shape[1] - side) // 2
    return cv2.resize(luma[top:top + side, left:left + side], (width, height), interpolation=cv2.INTER_AREA)


def model_files(models: Path) -> list[Path]:
    """Every .tflite of every pack, in a fixed order."""
    files = sorted(models.glob("*/*.tflite"))
    if not files:
        raise SystemExit(f"parity: no models under {models}: pass --models pointing at the packs' folder")
    return files


def routing(models: Path) -> dict[str, dict[str, Any]]:
    """Per pack and sample: the frame label, route shares and the map's letters, from the int8 pack."""
    lumas = {name: luma.astype(np.float32) / 255.0 for name, luma in sample_lumas().items()}
    out: dict[str, dict[str, Any]] = {}
    for pack_dir in sorted(p.parent for p in models.glob("*/manifest.json")):
        router = Router(ModelPack.load(pack_dir, precision="int8"))
        for name, luma in lumas.items():
            severity, _ = router.decide(luma)
            out[f"{pack_dir.name}/{name}"] = {"label": severity.label, "shares": severity.scores,
                                              "map": (severity.map or {}).get("rows")}
    return out


def run(out: Path, models: Path, reference: Path | None) -> None:
    """Run every model on its inputs and write inputs, outputs and routing to `out` (.npz)."""
    ref = dict(np.load(reference)) if reference else None
    lumas = None if ref else sample_lumas()
    arrays: dict[str, np.ndarray] = {}
    interpreter, runtime = interpreter_class()
    for path in model_files(models):
        key = f"{path.parent.name}/{path.name}"
        model = TfliteModel(path, interpreter, threads=2)
        _, height, width, _ = model.input_shape
        if ref is not None:
            inputs = ref[f"in:{key}"]
        else:
            assert lumas is not None
            inputs = np.stack([fit(luma, height, width) for luma in lumas.values()])
        outputs = [model(x[None, :, :, None].astype(np.float32) / 255.0)[0] for x in inputs]
        arrays[f"in:{key}"] = inputs
        arrays[f"out:{key}"] = np.stack(outputs)
        arrays[f"kernels:{key}"] = np.array(model.kernels)
    arrays["routing"] = np.array(json.dumps(routing(models), sort_keys=True))
    arrays["runtime"] = np.array(f"{runtime} on {sys.platform}/{np.__version__}/{cv2.__version__}")
    np.savez_compressed(out, **arrays)


@dataclass
class ModelParity:
    """One model's agreement between two machines."""

    model: str
    kind: str
    """'image' (a generator: compared in 8-bit levels, as the daemon writes them) or 'scores' (a classifier)."""
    max_abs: float
    """Largest difference: 8-bit levels for an image, probability for scores."""
    within_1: float
    """Share of pixels within 1 level (image), or of cells with the same argmax (scores)."""


def kernel_mismatches(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> list[str]:
    """'model: x86 kernels/arm kernels' for each model that did not run under XNNPACK on both machines."""
    return [f"{key[8:]}: {ref[key]}/{other.get(key, 'unrecorded')}" for key in sorted(k for k in ref
            if k.startswith("kernels:")) if str(ref[key]) != "xnnpack" or str(other.get(key)) != "xnnpack"]


def compare_arrays(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> tuple[list[ModelParity], list[str]]:
    """Per-model parity, and the samples whose routing decision differs (empty when they all agree)."""
    rows = []
    for key in sorted(k for k in ref if k.startswith("out:")):
        if key not in other:
            raise SystemExit(f"parity: {key[4:]} is missing from the second run: run both on the same models")
        a, b = ref[key], other[key]
        if a.shape[-1] == 1:
            la, lb = (np.round(np.clip(x, 0, 1) * 255).astype(np.int16) for x in (a, b))
            diff = np.abs(la - lb)
            rows.append(ModelParity(key[4:], "image", float(diff.max()), float((diff <= 1).mean())))
        else:
            same = a.argmax(axis=-1) == b.argmax(axis=-1)
            rows.append(ModelParity(key[4:], "scores", float(np.abs(a - b).max()), float(same.mean())))
    route_a, route_b = json.loads(str(ref["routing"])), json.loads(str(other["routing"]))
    differ = [name for name in route_a if route_a[name]["label"] != route_b.get(name, {}).get("label")]
    return rows, differ


def compare(reference: Path, other: Path) -> int:
    """Print the parity table; non-zero when an image model misses the target or a routing decision differs."""
    ref, oth = dict(np.load(reference)), dict(np.load(other))
    rows, differ = compare_arrays(ref, oth)
    print(f"reference: {ref['runtime']}\nother:     {oth['runtime']}")
    for row in rows:
        print(f"{row.model:36} {row.kind:6} max |diff| {row.max_abs:8.4f}  within 1 level/same class "
              f"{100 * row.within_1:7.3f} %")
    images = [r for r in rows if r.kind == "image"]
    worst = min(images, key=lambda r: r.within_1) if images else None
    maps_a, maps_b = json.loads(str(ref["routing"])), json.loads(str(oth["routing"]))
    same_maps = sum(maps_a[k]["map"] == maps_b.get(k, {}).get("map") for k in maps_a)
    print(f"routing: {len(maps_a) - len(differ)}/{len(maps_a)} frame labels and {same_maps}/{len(maps_a)} blur maps "
          f"identical" + (f"; labels differ on {', '.join(differ)}" if differ else ""))
    kernels = kernel_mismatches(ref, oth)
    if kernels:
        print(f"kernels: not XNNPACK on both machines (reference/other), so not what a Pi runs: {'; '.join(kernels)}."
              f" In the rootfs XNNPACK needs the Pi 5's CPU view that deploy/pi-rehearsal.sh mounts")
    failed = bool(differ) or bool(kernels) or (worst is not None and worst.within_1 < WITHIN_TARGET)
    print("parity: " + ("FAILED" if failed else "ok") + f" (target: {100 * WITHIN_TARGET:.1f} % within 1 level and "
          f"identical routing labels, XNNPACK on both)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.parity", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run every shipped model on fixed inputs")
    run_p.add_argument("out", type=Path)
    run_p.add_argument("--inputs", type=Path, help="reuse the inputs stored in another run's file")
    run_p.add_argument("--models", type=Path, default=MODELS, help="the packs' folder (default: the repo's)")
    cmp_p = sub.add_parser("compare", help="compare two runs")
    cmp_p.add_argument("reference", type=Path)
    cmp_p.add_argument("other", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.models, args.inputs)
        return 0
    return compare(args.reference, args.other)


if __name__ == "__main__":
    sys.exit(main())
