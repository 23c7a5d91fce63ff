"""Train one model of a pack: the blur-severity classifier or a semi / heavy generator.

Resumable (a tf.train.Checkpoint every --ckpt-every steps; rerun the same command to continue), seeded, with a
progress bar, a loss/validation CSV and a loss-curve PNG in the run folder.

    python -m tools.train --pack photo --role semi                      # our generator, supervised
    python -m tools.train --pack fashion-mnist --role heavy --recipe hybrid
    python -m tools.train --pack mnist --role classifier
    python -m tools.train --pack photo --role classifier --arch mapper-radius --synthesis realistic   # radius map
    python -m tools.train --pack photo --role heavy --arch nonblind-heavy --synthesis realistic       # told the radius
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from deblurd.restore.manifest import ROLES, WIENER_SIGMA  # noqa: E402
from deblurd.restore.packs import PACKS, pack_spec  # noqa: E402
from tools.data import synth  # noqa: E402
from tools.train import losses, models

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "runs"


def default_arch(pack: str, role: str) -> str:
    if role == "classifier":
        return "classifier"
    return "ours-digits" if pack_spec(pack).protocol == "seed-paper" else f"ours-{role}"


def build(arch: str, pack: str) -> keras.Model:
    if arch in models.MAPPERS:
        return models.MAPPERS[arch]()
    if arch in models.CLASSIFIERS:
        return models.severity_classifier(pack_spec(pack).classifier_crop, models.CLASSIFIERS[arch])
    return models.ARCHITECTURES[arch]()


def run_dir(args: argparse.Namespace) -> Path:
    suffix = "" if args.synthesis == "disk" else f"-{args.synthesis}"
    return Path(args.runs) / f"{args.pack}-{args.role}-{args.recipe}-{args.arch}{suffix}"


def command(options: dict) -> str:
    """The tools.train.cpu command line of one training leg (options as in run.json)."""
    line = (f"python -m tools.train --pack {options['pack']} --role {options['role']} --recipe {options['recipe']} "
            f"--arch {options['arch']} --steps {options['steps']}")
    defaults = vars(parse_args(["--pack", options["pack"], "--role", options["role"]]))
    for key in ("loss", "patch", "lr", "warmup_steps", "textured", "batch", "synthesis", "init_from"):
        if options.get(key, defaults[key]) != defaults[key]:
            line += f" --{key.replace('_', '-')} {options[key]}"
    return line


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    mse = float(np.mean((np.clip(pred, 0, 1) - target) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def warm_start(net: keras.Model, source: Path, role: str) -> None:
    """Start from a pack's float model of the role (a folder with a manifest; a radius mapper takes a class mapper's
    body) or a training run's final weights."""
    if (source / "manifest.json").exists():
        from deblurd.restore.manifest import load_manifest
        from tools.train.warm_start import load_body_from_tflite, load_from_tflite

        entry = load_manifest(source).models[role]
        if entry.output == "classes" and net.name.startswith("mapper_radius"):
            print(f"warm start: {load_body_from_tflite(net, source / entry.float_file)} body layers from "
                  f"{source.name}'s class mapper; the radius and confidence heads start fresh", flush=True)
        else:
            load_from_tflite(net, source / entry.float_file)
    elif (source / "final.weights.h5").exists():
        net.load_weights(source / "final.weights.h5")
    else:
        raise SystemExit(f"--init-from {source}: neither a model pack (manifest.json) nor a finished run "
                         f"(final.weights.h5)")


def inherited_legs(source: Path, role: str) -> list[str]:
    """The legs that made the weights a run starts from, so a model's manifest lists its whole history."""
    if (source / "manifest.json").exists():
        return list(json.loads((source / "manifest.json").read_text())["models"][role]["training"].get("commands", []))
    return list(json.loads((source / "run.json").read_text()).get("legs", []))


def inherited_seconds(source: Path, role: str) -> float:
    """Training seconds behind the weights a run starts from (as far as they were recorded)."""
    if (source / "manifest.json").exists():
        training = json.loads((source / "manifest.json").read_text())["models"][role]["training"]
    else:
        training = json.loads((source / "run.json").read_text())
    return float(training.get("seconds", 0.0)) + float(training.get("seconds_before", 0.0))


class Trainer:
    """Owns the models, optimizers and checkpoint of one run; `step(batch)` returns a dict of losses."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.net = build(args.arch, args.pack)
        schedule = (keras.optimizers.schedules.CosineDecay(0.0, max(1, args.steps - args.warmup_steps), alpha=0.02,
                                                           warmup_target=args.lr, warmup_steps=args.warmup_steps)
                    if args.warmup_steps else keras.optimizers.schedules.CosineDecay(args.lr, args.steps, alpha=0.02))
        self.opt = keras.optimizers.Adam(schedule)
        parts = {"net": self.net, "opt": self.opt}
        if args.recipe == "hybrid":
            self.reblur = models.ARCHITECTURES["blur-model"]()
            self.d_sharp = models.patch_discriminator(name="d_sharp")
            self.d_blur = models.patch_discriminator(name="d_blur")
            self.opt_f = keras.optimizers.Adam(schedule)
            self.opt_d = keras.optimizers.Adam(
                keras.optimizers.schedules.CosineDecay(args.lr / 2, args.steps, alpha=0.02), beta_1=0.5)
            parts.update(reblur=self.reblur, d_sharp=self.d_sharp, d_blur=self.d_blur, opt_f=self.opt_f,
                         opt_d=self.opt_d)
        if args.init_from:
            warm_start(self.net, Path(args.init_from), args.role)
        self.step_var = tf.Variable(0, dtype=tf.int64)
        self.ckpt = tf.train.Checkpoint(step=self.step_var, **parts)
        self.manager = tf.train.CheckpointManager(self.ckpt, run_dir(args) / "ckpt", max_to_keep=2)
        self.step = tf.function(self._step_radius if args.arch in models.RADIUS_MAPPERS
                                else self._step_mapper if args.arch in models.MAPPERS
                                else self._step_classifier if args.role == "classifier"
                                else self._step_hybrid if args.recipe == "hybrid" else self._step_supervised)

    def _step_supervised(self, blurred, sharp):
        with tf.GradientTape() as tape:
            pred = self.net(blurred, training=True)
            loss = (losses.charbonnier(sharp, pred) if self.args.loss == "charbonnier"
                    else losses.mse(sharp, pred))
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        return {"loss": loss}

    def _step_classifier(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, self.net(x, training=True)))
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        return {"loss": loss}

    def _step_mapper(self, x, target):
        """Cross-entropy per map cell, weighted by how observable each cell's blur is (target channel 1)."""
        with tf.GradientTape() as tape:
            loss = losses.mapper_loss(target, self.net(x, training=True))
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        return {"loss": loss}

    def _step_radius(self, x, target):
        """Huber loss on each cell's radius in px and cross-entropy of the confidence head, both weighted by how
        observable the cell's blur is (target channel 1)."""
        with tf.GradientTape() as tape:
            loss = losses.radius_loss(target, self.net(x, training=True))
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        return {"loss": loss}

    def _step_hybrid(self, blurred, sharp):
        """The first paper's recipe on our generator: pix2pix L1 + CycleGAN cycle consistency + LSGAN adversarial
        losses, with a second generator (sharp -> blurred) and two PatchGAN critics."""
        mse = lambda a, b: tf.reduce_mean(tf.square(a - b))  # noqa: E731
        with tf.GradientTape(persistent=True) as tape:
            fake_sharp = self.net(blurred, training=True)
            fake_blur = self.reblur(sharp, training=True)
            cyc_blur = self.reblur(fake_sharp, training=True)
            cyc_sharp = self.net(fake_blur, training=True)
            ds_fake, db_fake = self.d_sharp(fake_sharp, training=True), self.d_blur(fake_blur, training=True)
            adv_g = mse(ds_fake, 1.0) + mse(db_fake, 1.0)
            cycle = losses.charbonnier(cyc_blur, blurred) + losses.charbonnier(cyc_sharp, sharp)
            paired = losses.charbonnier(fake_sharp, sharp) + losses.charbonnier(fake_blur, blurred)
            g_loss = 100.0 * paired + 10.0 * cycle + 1.0 * adv_g
            d_loss = 0.5 * (mse(self.d_sharp(sharp, training=True), 1.0) + mse(ds_fake, 0.0)
                            + mse(self.d_blur(blurred, training=True), 1.0) + mse(db_fake, 0.0))
        g_vars, f_vars = self.net.trainable_variables, self.reblur.trainable_variables
        d_vars = self.d_sharp.trainable_variables + self.d_blur.trainable_variables
        self.opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        self.opt_f.apply_gradients(zip(tape.gradient(g_loss, f_vars), f_vars))
        self.opt_d.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        del tape
        return {"loss": losses.charbonnier(fake_sharp, sharp), "adv": adv_g, "cycle": cycle, "d": d_loss}


def validate(net: keras.Model, role: str, val: tuple[np.ndarray, np.ndarray]) -> float:
    """Validation PSNR (generators), accuracy (classifier), textured-cell accuracy (blur mapper) or minus the
    textured cells' radius MAE in px (radius mapper; higher is better throughout) on a fixed held-out batch."""
    pred = net.predict(val[0], batch_size=32, verbose=0)
    if pred.ndim == 4 and role == "classifier" and pred.shape[-1] == 2:
        return -losses.radius_mae(pred, val[1])
    if pred.ndim == 4 and role == "classifier":
        textured = val[1][..., 1] == 1.0
        return float(np.mean(pred.argmax(-1)[textured] == val[1][..., 0][textured]))
    if role == "classifier":
        return float(np.mean(np.argmax(pred, axis=1) == val[1]))
    return psnr(pred, val[1])


def plot_curve(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(csv_path.open()))
    if not rows:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [int(r["step"]) for r in rows]
    ax[0].plot(steps, [float(r["loss"]) for r in rows])
    ax[0].set(xlabel="step", ylabel="training loss", yscale="log")
    val = [(int(r["step"]), float(r["val"])) for r in rows if r.get("val")]
    if val:
        ax[1].plot(*zip(*val), marker="o")
    ax[1].set(xlabel="step",
              ylabel="validation " + ("accuracy" if "classifier" in png_path.parent.name else "PSNR (dB)"))
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def train(args: argparse.Namespace) -> Path:
    keras.utils.set_random_seed(args.seed)
    out = run_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"seconds": 0.0}
    if "legs" not in meta and args.init_from:
        meta["legs"] = inherited_legs(Path(args.init_from), args.role)
        meta["seconds_before"] = inherited_seconds(Path(args.init_from), args.role)
    meta["machine"] = f"{platform.machine()} CPU, {os.cpu_count()} cores, {args.threads or 'all'} thread(s)"
    meta.update({k: v for k, v in vars(args).items() if k not in ("runs",)})
    meta["wiener_sigma"] = WIENER_SIGMA  # what a non-blind run's Wiener channel is computed for (export checks it)
    leg = command(vars(args))
    if meta.setdefault("legs", [])[-1:] != [leg]:
        meta["legs"].append(leg)
    trainer = Trainer(args)
    if trainer.manager.latest_checkpoint:
        trainer.ckpt.restore(trainer.manager.latest_checkpoint)
    start = int(trainer.step_var.numpy())
    batches, val = sources(args, start)
    log_path = out / "losses.csv"
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as log:
        writer = csv.writer(log)
        if new_log:
            writer.writerow(["step", "loss", "val"])
        bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc=out.name, mininterval=5)
        t0, running = time.time(), []
        for step in bar:
            x, y = batches(args.batch)
            losses = trainer.step(tf.constant(x), tf.constant(y))
            trainer.step_var.assign(step + 1)
            running.append(float(losses["loss"]))
            done = step + 1
            if done % args.log_every == 0 or done == args.steps:
                checkpoint = done % args.ckpt_every == 0 or done == args.steps
                score = validate(trainer.net, args.role, val) if checkpoint else None
                writer.writerow([done, f"{np.mean(running):.6f}", "" if score is None else f"{score:.4f}"])
                log.flush()
                bar.set_postfix(loss=f"{np.mean(running):.4f}", val=score)
                running = []
            if done % args.ckpt_every == 0 or done == args.steps:
                trainer.manager.save(checkpoint_number=done)
                meta["seconds"] += time.time() - t0
                t0 = time.time()
                meta["steps_done"] = done
                meta_path.write_text(json.dumps(meta, indent=2, default=str))
    trainer.net.save_weights(out / "final.weights.h5")
    meta["final_val"] = validate(trainer.net, args.role, val)
    meta_path.write_text(json.dumps(meta, indent=2, default=str))
    plot_curve(log_path, out / "loss.png")
    return out


def sources(args: argparse.Namespace, start: int) -> tuple[Callable[[int], tuple[np.ndarray, np.ndarray]],
                                                           tuple[np.ndarray, np.ndarray]]:
    """The run's training batches (seeded by where it resumes) and its fixed validation batch; a mixed run draws
    half of every batch from each synthesis."""
    if args.synthesis == "mixed":
        parts = [sources(argparse.Namespace(**{**vars(args), "synthesis": s}), start) for s in ("realistic", "disk")]
        both = lambda a, b: (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))  # noqa: E731
        return (lambda n: both(parts[0][0](n - n // 2), parts[1][0](n // 2)),
                both(parts[0][1], parts[1][1]))
    inputs = models.GENERATOR_INPUTS.get(args.arch, ("luma",))
    if args.synthesis == "realistic":
        from tools.data.realistic import RealisticSource

        train_source = RealisticSource(args.pack, "train", args.seed + start)
        val_source = RealisticSource(args.pack, "validation", 12345)
        if args.arch in models.RADIUS_MAPPERS:
            return ((lambda n: train_source.radius_cells(n, args.patch)),
                    val_source.radius_cells(args.val_size, args.patch))
        if args.arch in models.MAPPERS:
            return (lambda n: train_source.cells(n, args.patch)), val_source.cells(args.val_size, args.patch)
        if args.role == "classifier":
            return train_source.severity, val_source.severity(args.val_size)
        return (lambda n: train_source.pairs(args.role, n, args.patch, inputs),
                val_source.pairs(args.role, args.val_size, args.patch, inputs))
    if args.role == "classifier":
        return (synth.SeveritySource(args.pack, "train", args.seed + start).batch,
                synth.SeveritySource(args.pack, "validation", 12345).batch(args.val_size))
    source = synth.PairSource(args.pack, args.role, "train", args.seed + start, args.patch, args.textured, inputs)
    return source.batch, synth.PairSource(args.pack, args.role, "validation", 12345, args.patch,
                                          inputs=inputs).batch(args.val_size)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", required=True, choices=list(PACKS))
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--recipe", default="supervised", choices=["supervised", "hybrid"])
    p.add_argument("--arch", default=None,
                   help="architecture (default: ours for the pack and role); see tools/train/models.py")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--patch", type=int, default=128, help="photo patch size for generators and the blur mapper")
    p.add_argument("--textured", type=float, default=0.0,
                   help="share of photo patches picked as the most textured of 4 candidates (edges carry the signal)")
    p.add_argument("--loss", default="charbonnier", choices=["charbonnier", "mse"],
                   help="supervised pixel loss: Charbonnier (robust, sharper edges) or MSE (what PSNR scores)")
    p.add_argument("--synthesis", default="disk", choices=["disk", "realistic", "mixed"],
                   help="photo packs: uniform defocus disk plus noise, the realistic layered-depth lens and camera "
                        "synthesis (deblurd.optics.defocus), or half of each batch from each")
    p.add_argument("--init-from", default=None, metavar="PACK_DIR",
                   help="start a new run from the weights of a pack's float model of this role (e.g. models/photo) "
                        "or of a finished run folder")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="linear learning-rate warm-up (default 1000 for a generator refining a Wiener input, whose "
                        "first full-size Adam steps knock it off that input; 0 otherwise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0 = all cores)")
    p.add_argument("--runs", default=str(RUNS))
    args = p.parse_args(argv)
    args.arch = args.arch or default_arch(args.pack, args.role)
    if args.warmup_steps is None:
        args.warmup_steps = 1000 if "wiener" in models.GENERATOR_INPUTS.get(args.arch, ()) else 0
    digits = pack_spec(args.pack).protocol == "seed-paper"
    args.batch = args.batch or (64 if digits or (args.role == "classifier" and args.arch not in models.MAPPERS)
                                else 16)
    args.steps = args.steps or (3000 if args.role != "classifier" else 1500)
    if args.role == "classifier" and args.recipe != "supervised":
        p.error("the classifier is trained with --recipe supervised")
    if args.arch in models.GENERATOR_INPUTS and (args.role == "classifier" or args.recipe != "supervised"
                                                 or pack_spec(args.pack).protocol != "photo"):
        p.error(f"--arch {args.arch} is a non-blind photo generator: --role semi or heavy, --recipe supervised, "
                f"a photo pack")
    if args.arch in models.MAPPERS and (args.role != "classifier" or args.synthesis != "realistic"):
        p.error(f"--arch {args.arch} is a dense blur map: --role classifier --synthesis realistic (only the "
                f"realistic synthesis knows the blur of every pixel)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    print(train(args))


if __name__ == "__main__":
    main()
