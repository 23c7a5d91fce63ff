"""Fine-tune a photo pack's generators to one lens: collected pairs plus synthesis with the calibrated PSF.

    python -m tools.train.finetune --pairs ~/pairs --pack photo             # -> models/photo-<lens id>/
    python -m tools.train.finetune --pairs ~/pairs --pack photo --steps 2000 --held-out ~/pairs-test

The pairs come from `deblurd collect`, the lens profile from `deblurd calibrate` (read from <pairs>/lens-profile.json
or --profile; made from the pairs when neither exists). Each pair's blur class follows from its defocus through the
profile, so the semi and heavy generators each continue, from the pack's float weights (tools/train/warm_start.py), on
crops of their own pairs, half of every batch instead synthesised from the training photos through this lens's PSF
(deblurd.optics.lens_psf with the profile's rim, softening and colour) and the camera pipeline. The new pack keeps the
classifier, gets a manifest whose training legs and data say all this, and an evaluation on held-out pairs (scenes
not trained on) beside the original pack, both through the daemon's own blur map and router with the int8 models.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from deblurd.commands.calibrate import Pair, calibrate, read_pairs  # noqa: E402
from deblurd.image_io import read_rgb  # noqa: E402
from deblurd.optics.defocus import Layer, render  # noqa: E402
from deblurd.optics.lens_profile import PROFILE_NAME, LensCalibration, load_profile, save_profile  # noqa: E402
from deblurd.optics.sensor import SensorProfile, capture, srgb_to_linear  # noqa: E402
from deblurd.output.store import AtomicWriter  # noqa: E402
from deblurd.restore.inference import ModelPack, rgb_to_luma  # noqa: E402
from deblurd.restore.manifest import PACK_MANIFEST_NAME, RESTORER_ROLES, Manifest, load_manifest, sha256_of  # noqa: E402
from deblurd.restore.router import Router  # noqa: E402
from tools.data import sources as data
from tools.data.realistic import luma  # noqa: E402
from tools.data.synth import load_photos  # noqa: E402
from tools.train import cpu as train  # noqa: E402
from tools.train import export
from tools.train.losses import charbonnier  # noqa: E402
from tools.train.warm_start import load_from_tflite  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
HELD_OUT_EVERY = 5
"""Without --held-out, every 5th scene is held out of training for the evaluation."""
MARGIN = 16


@dataclass(frozen=True)
class LensPair:
    """One collected pair at the pack's working width: luminance of the defocused frame and of its reference."""

    pair: Pair
    blurred: np.ndarray
    sharp: np.ndarray
    radius: float
    """The profile's |radius| at the working width (frame centre)."""
    label: str


def load_lens_pairs(pairs: list[Pair], profile: LensCalibration, manifest: Manifest) -> list[LensPair]:
    """Pairs read at the pack's working width and classed by the blur the profile expects for their defocus."""
    width = manifest.working_width or 640
    out = []
    for pair in pairs:
        images = []
        for path in (pair.blurred, pair.reference):
            rgb = read_rgb(path)
            if rgb is None:
                raise SystemExit(f"cannot read {path}: collect that scene again or remove it from the manifest")
            height = int(round(rgb.shape[0] * width / rgb.shape[1]))
            images.append(rgb_to_luma(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)))
        radius = abs(profile.radius_px(pair.defocus, width))
        out.append(LensPair(pair, images[0], images[1], radius, manifest.blur.label(radius)))
    return out


def split(pairs: list[LensPair], held_out: list[LensPair] | None) -> tuple[list[LensPair], list[LensPair]]:
    """(training, held-out): the --held-out folder's pairs, else every HELD_OUT_EVERY-th scene's."""
    if held_out is not None:
        return pairs, held_out
    scenes = sorted({p.pair.scene for p in pairs})
    test = {s for i, s in enumerate(scenes) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1}
    return [p for p in pairs if p.pair.scene not in test], [p for p in pairs if p.pair.scene in test]


class LensBatches:
    """Training batches of one role: crops of its collected pairs, and crops of training photos blurred through
    the calibrated lens and the camera, at radii across the role's training range."""

    def __init__(self, pairs: list[LensPair], profile: LensCalibration, radii: tuple[float, float],
                 synth_share: float, seed: int) -> None:
        self.pairs = pairs
        self.lens = profile.psf_lens(640)
        self.radii = radii
        self.synth_share = synth_share if pairs else 1.0
        self.rng = np.random.default_rng(seed)
        self.photos = load_photos("train", 640, data.load_rgb) if self.synth_share > 0 else []

    def _augment(self, *images: np.ndarray) -> list[np.ndarray]:
        turns, flip = int(self.rng.integers(0, 4)), bool(self.rng.random() < 0.5)
        return [np.ascontiguousarray(np.rot90(im, turns)[:, ::-1] if flip else np.rot90(im, turns)) for im in images]

    def collected(self, patch: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.pairs[int(self.rng.integers(len(self.pairs)))]
        h, w = p.sharp.shape
        y, x = int(self.rng.integers(0, h - patch + 1)), int(self.rng.integers(0, w - patch + 1))
        blurred, sharp = self._augment(p.blurred[y:y + patch, x:x + patch], p.sharp[y:y + patch, x:x + patch])
        return blurred, sharp

    def synthesised(self, patch: int) -> tuple[np.ndarray, np.ndarray]:
        size = patch + 2 * MARGIN
        fits = [p for p in self.photos if min(p.shape[:2]) >= size]
        photo = fits[int(self.rng.integers(len(fits)))]
        y = int(self.rng.integers(0, photo.shape[0] - size + 1))
        x = int(self.rng.integers(0, photo.shape[1] - size + 1))
        crop = self._augment(photo[y:y + size, x:x + size].astype(np.float32) / 255)[0]
        radius = float(self.rng.uniform(*self.radii)) * (1 if self.rng.random() < 0.7 else -1)
        light, _ = render(srgb_to_linear(crop), [Layer(np.ones(crop.shape[:2], np.float32), radius)], self.lens)
        degraded = capture(light, SensorProfile.draw(self.rng), self.rng)
        inner = (slice(MARGIN, MARGIN + patch),) * 2
        return luma(degraded)[inner], luma(crop)[inner]

    def __call__(self, n: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
        samples = [self.synthesised(patch) if self.rng.random() < self.synth_share else self.collected(patch)
                   for _ in range(n)]
        return np.stack([s[0] for s in samples])[..., None], np.stack([s[1] for s in samples])[..., None]


def finetune_role(role: str, base: Path, base_manifest: Manifest, batches: LensBatches,
                  args: argparse.Namespace) -> tuple[keras.Model, dict]:
    """Continue the base pack's generator of `role` on lens batches; returns the net and its training facts."""
    entry = base_manifest.models[role]
    net = train.build(entry.architecture, "photo")
    load_from_tflite(net, base / entry.float_file)
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.lr, args.steps, alpha=0.1))

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = charbonnier(y, net(x, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
        return loss

    t0, losses = time.time(), []
    for _ in tqdm(range(args.steps), desc=f"fine-tune {role}", mininterval=5):
        x, y = batches(args.batch, args.patch)
        losses.append(float(step(tf.constant(x), tf.constant(y))))
    facts = {"steps_done": args.steps, "batch": args.batch, "patch": args.patch, "lr": args.lr, "seed": args.seed,
             "seconds": round(time.time() - t0, 1),
             "seconds_before": entry.training.get("seconds", 0.0) + entry.training.get("seconds_before", 0.0),
             "machine": f"{platform.machine()}, {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}, "
                        f"{os.cpu_count()} cores",
             "synthesis": f"lens pairs ({len(batches.pairs)}) + calibrated-PSF synthesis ({batches.synth_share:.0%})",
             "final_loss": round(float(np.mean(losses[-20:])), 5),
             "commands": list(entry.training.get("commands", [])) + [args.command]}
    return net, facts


def export_generator(role: str, net: keras.Model, tile: int, held: list[LensPair], out: Path,
                     rng: np.random.Generator) -> dict:
    """int8 and float TFLite files of a fine-tuned generator, with the export check on held-out crops."""
    def crops(n: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = [held[int(rng.integers(len(held)))] for _ in range(n)]
        xs, ys = [], []
        for p in chosen:
            h, w = p.sharp.shape
            y, x = int(rng.integers(0, h - tile + 1)), int(rng.integers(0, w - tile + 1))
            xs.append(p.blurred[y:y + tile, x:x + tile])
            ys.append(p.sharp[y:y + tile, x:x + tile])
        return np.stack(xs)[..., None], np.stack(ys)[..., None]

    model = export.fixed_shape(net, tile)
    writer = AtomicWriter()
    writer.write(out / f"{role}.tflite", export.convert(model, crops(64)[0]))
    writer.write(out / f"{role}.float.tflite", export.convert(model, None))
    x, y = crops(16)
    check = {"held_out_crops": len(x), "input_psnr": train.psnr(x, y),
             "float_psnr": train.psnr(export.run_tflite(out / f"{role}.float.tflite", x), y),
             "int8_psnr": train.psnr(export.run_tflite(out / f"{role}.tflite", x), y)}
    return {"file": f"{role}.tflite", "sha256": sha256_of(out / f"{role}.tflite"), "float_file": f"{role}.float.tflite",
            "float_sha256": sha256_of(out / f"{role}.float.tflite"), "export_check": check}


def evaluate(packs: dict[str, Path], held: list[LensPair], threads: int) -> dict:
    """Mean PSNR (dB, luminance against the reference) per defocus on held-out pairs: the input, and each pack
    through the daemon's blur map and router (alone, and steered by the profile as the daemon does when the scene's
    distance is configured), and on the route the lens profile expects."""
    rows: dict[float, dict[str, list[float]]] = {}
    for name, pack_dir in packs.items():
        pack = ModelPack.load(pack_dir, "int8", "auto", threads)
        router = Router(pack)
        for p in held:
            row = rows.setdefault(round(p.pair.defocus, 3), {"input": [], "radius": [p.radius], "label": [p.label]})
            if name == next(iter(packs)):
                row["input"].append(train.psnr(p.blurred, p.sharp))
            _, mapped = router.route_luma(p.blurred)
            row.setdefault(f"{name} (blur map)", []).append(train.psnr(mapped, p.sharp))
            router.expect(p.radius)  # what the daemon does with the profile and lens.subject_dioptres
            _, steered = router.route_luma(p.blurred)
            router.expect(None)
            row.setdefault(f"{name} (map + profile)", []).append(train.psnr(steered, p.sharp))
            routed = router.restore(p.blurred, p.label)
            row.setdefault(f"{name} (lens route)", []).append(train.psnr(routed, p.sharp))
    table = []
    for defocus, row in sorted(rows.items()):
        entry = {"defocus_dioptres": defocus, "radius_px": round(row.pop("radius")[0], 2),
                 "expected_class": row.pop("label")[0], "pairs": len(row["input"])}
        entry.update({k: round(float(np.mean(v)), 2) for k, v in row.items()})
        table.append(entry)
    return {"unit": "mean PSNR (dB) of luminance against the reference frame, int8 models, per defocus",
            "held_out_pairs": len(held), "rows": table}


def format_table(evaluation: dict) -> str:
    rows = evaluation["rows"]
    keys = [k for k in rows[0] if k not in ("defocus_dioptres", "radius_px", "expected_class", "pairs")]
    lines = [f"{'defocus':>8} {'radius':>6} {'class':>6} {'pairs':>5} " + " ".join(f"{k:>22}" for k in keys)]
    for r in rows:
        lines.append(f"{r['defocus_dioptres']:8.2f} {r['radius_px']:6.2f} {r['expected_class']:>6} {r['pairs']:5d} "
                     + " ".join(f"{r[k]:22.2f}" for k in keys))
    return "\n".join(lines)


def obtain_profile(folder: Path, given: Path | None) -> LensCalibration:
    """The lens profile: --profile, else <pairs>/lens-profile.json, else calibrated now and saved there."""
    path = given or folder / PROFILE_NAME
    if given is not None or path.exists():
        return load_profile(path)
    print(f"no lens profile at {path}: calibrating from the pairs")
    profile = calibrate(folder)
    save_profile(path, profile)
    return profile


def finetune(args: argparse.Namespace) -> Path:
    base = args.models / args.pack
    base_manifest = load_manifest(base)
    if base_manifest.blur.psf != "defocus" or base_manifest.working_width is None:
        raise SystemExit(f"{base} is not a photo pack (its blur is {base_manifest.blur.psf}, not defocus at a "
                         f"working width): fine-tune a photo pack, e.g. --pack photo")
    profile = obtain_profile(args.pairs, args.profile)
    pairs = load_lens_pairs(read_pairs(args.pairs)[1], profile, base_manifest)
    held = load_lens_pairs(read_pairs(args.held_out)[1], profile, base_manifest) if args.held_out else None
    training, held = split(pairs, held)
    if not held:
        raise SystemExit("no held-out pairs: collect more scenes (every 5th is held out) or pass --held-out DIR")
    name = args.name or f"{args.pack}-{profile.lens_id}"
    out = args.out or args.models / name
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    entries = base_manifest.model_dump()["models"]
    for file in (entries["classifier"]["file"], entries["classifier"]["float_file"]):
        shutil.copyfile(base / file, out / file)
    tile = entries["semi"]["input_shape"][1]
    for role in RESTORER_ROLES:
        own = [p for p in training if p.label == role]
        print(f"{role}: {len(own)} training pair(s), {sum(p.label == role for p in held)} held out")
        batches = LensBatches(own, profile, tuple(base_manifest.blur.train_range(role)), args.synth_share,
                              args.seed + RESTORER_ROLES.index(role))
        net, facts = finetune_role(role, base, base_manifest, batches, args)
        files = export_generator(role, net, tile, [p for p in held if p.label == role] or held, out,
                                 np.random.default_rng(args.seed))
        check = files.pop("export_check")
        entries[role].update(files, training=facts, evaluation={"export_check": check})
    facts = {**base_manifest.model_dump(), "name": name, "version": f"{base_manifest.version}+{profile.lens_id}",
             "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "models": entries,
             "data": {**base_manifest.data, "lens": {"pairs": str(args.pairs), "profile": profile.summary(),
                                                     "training_pairs": len(training), "held_out_pairs": len(held)}},
             "evaluation": {}}
    AtomicWriter().write(out / PACK_MANIFEST_NAME, Manifest.model_validate(facts).model_dump_json(indent=2).encode())
    evaluation = evaluate({args.pack: base, name: out}, held, args.threads or 2)
    facts["evaluation"] = {"lens_pairs": {**evaluation, "command": args.command}}
    AtomicWriter().write(out / PACK_MANIFEST_NAME, Manifest.model_validate(facts).model_dump_json(indent=2).encode())
    print(format_table(evaluation))
    print(f"pack written to {out}. On the Pi: scp -r {out} pi@deblurd.local:/tmp/ && ssh pi@deblurd.local "
          f"'sudo cp -r /tmp/{out.name} /opt/deblurd/models/', then set pack = \"{out.name}\" under [models] in "
          f"/etc/deblurd/deblurd.toml, check with `deblurd doctor` and `sudo systemctl restart deblurd`")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=Path, required=True, metavar="DIR", help="a folder from `deblurd collect`")
    p.add_argument("--pack", default="photo", help="the pack to start from (a photo pack)")
    p.add_argument("--models", type=Path, default=REPO / "models", help="folder holding the packs")
    p.add_argument("--profile", type=Path, help=f"lens profile (default <pairs>/{PROFILE_NAME})")
    p.add_argument("--held-out", type=Path, metavar="DIR", help="pairs to evaluate on (default: every 5th scene)")
    p.add_argument("--name", help="new pack's name (default <pack>-<lens id>)")
    p.add_argument("--out", type=Path, help="new pack's folder (default <models>/<name>)")
    p.add_argument("--steps", type=int, default=300, help="steps per generator (default 300: a few CPU minutes)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--synth-share", type=float, default=0.5, help="share of each batch synthesised (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0 = all cores)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or not 0 <= args.synth_share <= 1:
        p.error("--steps and --batch must be 1 or more, --synth-share between 0 and 1")
    args.command = ("python -m tools.train.finetune "
                    + " ".join(argv if argv is not None else __import__("sys").argv[1:]))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    finetune(args)


if __name__ == "__main__":
    main()
