"""Train the photo pack's models on a lent GPU: Keras 3 on JAX, the synthesis on the machine's CPU cores.

A GPU trains a small conv net about 200x faster than this project's CPU machine, but only for minutes at a time
and without TensorFlow, the packages or the network. So the work goes in two steps:

    python -m tools.train.gpu photos --out .devdata/photos      # here: the photos of both splits, <= 1344 px wide
    # there, without the photo packages (with them, leave DEBLURD_PHOTOS unset):
    DEBLURD_PHOTOS=.devdata/photos KERAS_BACKEND=jax \\
        python -m tools.train.gpu train --out OUT --job semi:ours-semi-l:150 --job heavy:ours-heavy-l:170

Each job keeps every CPU core drawing fresh samples from the synthesis into a ring buffer while the GPU trains on
it (random dihedral transforms), for a fixed number of seconds under a cosine learning rate that follows the
clock. With --synth device the GPU makes every generator batch itself (tools/data/gpu_synth.py: uniform defocus
disks, or for --optics-share of them a real lens in linear light and the ISP's sharpening, and noise on crops of
the photos, uploaded once), so no sample crosses from the host; a net with more than
one input channel gets the non-blind inputs (luminance, radius map, Wiener) and is validated on the same synthesis.
A blur mapper (classes, or radius and confidence per cell) always draws from the CPU producers' realistic synthesis,
the only one that labels every pixel, also when it runs beside --synth device jobs.

It writes a run folder like tools.train.cpu's (final.weights.h5, run.json with the validation score on the
same fixed batch tools.train.cpu uses, losses.csv) packed as OUT/<run>.tar; unpack it under runs/ and tools.train.export
takes it like any other run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import platform
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deblurd.atomic import temp_name

PACK = "photo"
MAX_WIDTH = 1344
"""Photos travel at most this wide: tools.data.synth's largest training scale (2x the working width) survives."""
VAL_SEED = 12345
"""tools.train.cpu's validation seed, so run.json's final_val compares with CPU runs on the same synthesis."""
RING = 16384
"""Samples held per job; the producers overwrite random slots with fresh ones."""
CHUNK = 32
"""Samples one producer task draws."""


@dataclass(frozen=True)
class Job:
    """One model to train: its role, architecture and seconds of training."""

    role: str
    arch: str
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Job:
        role, arch, seconds = text.split(":")
        return cls(role, arch, float(seconds))

    @property
    def mapper(self) -> bool:
        return self.role == "classifier"

    @property
    def radius(self) -> bool:
        """A radius mapper: per-cell radius px and weight as float targets, trained on the radius loss."""
        from tools.train.models import RADIUS_MAPPERS

        return self.arch in RADIUS_MAPPERS


def export_photos(out: Path) -> int:
    """Writes the photos of both splits as JPEG (quality 95), named so that tools.data.sources splits them as here."""
    import cv2

    from tools.data import sources as data

    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for split in ("train", "validation"):
        for i, path in enumerate(data.photo_files(split)):
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SystemExit(f"{path}: unreadable photo; reinstall its package (make data)")
            scale = min(1.0, MAX_WIDTH / bgr.shape[1])
            if scale < 1.0:
                bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            folder = out / f"{split}-{i:03d}"
            folder.mkdir(exist_ok=True)
            cv2.imwrite(str(folder / f"{data.photo_name(path)}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if data.split_of(folder / f"{data.photo_name(path)}.jpg") != split:
                raise SystemExit(f"{path}: its copy would change split; keep photo names stable")
            count += 1
    return count


_SOURCES: dict = {}


def _draw(task: tuple[str, str, int, int, str, bool]) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of samples (inputs, targets), in a producer process: (role, synthesis, seed, patch, split, radius).

    Generators get (degraded, sharp) luma pairs as uint8; the blur mapper gets uint8 crops and per-cell (class,
    weight) targets, a radius mapper per-cell (radius px, weight) as float16."""
    from tools.data import synth
    from tools.data.realistic import RealisticSource

    role, synthesis, seed, patch, split, radius = task
    key = (synthesis, split, role)
    if not _SOURCES:
        import cv2

        cv2.setNumThreads(1)  # one core per producer: the pool already uses them all
    if key not in _SOURCES:
        _SOURCES[key] = (RealisticSource(PACK, split, seed) if synthesis == "realistic"
                         else synth.PairSource(PACK, role, split, seed, patch))
    source = _SOURCES[key]
    source.rng = np.random.default_rng(seed)
    if role == "classifier" and radius:
        x, target = source.radius_cells(CHUNK, patch)
        return _u8(x), target.astype(np.float16)
    if role == "classifier":
        x, target = source.cells(CHUNK, patch)
        return _u8(x), np.concatenate([target[..., :1], np.round(target[..., 1:] * 255)], -1).astype(np.uint8)
    x, y = source.pairs(role, CHUNK, patch) if synthesis == "realistic" else source.batch(CHUNK)
    return _u8(x), _u8(y)


def _u8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def _float(a: np.ndarray, mapper_target: bool = False) -> np.ndarray:
    if a.dtype == np.float16:
        return a.astype(np.float32)
    if mapper_target:
        return np.concatenate([a[..., :1], a[..., 1:] / 255.0], -1).astype(np.float32)
    return a.astype(np.float32) / 255.0


class Ring:
    """A buffer of samples that producer processes keep refreshing while training reads random batches from it."""

    def __init__(self, pool, job: Job, patch: int, syntheses: tuple[str, ...]) -> None:
        self.pool, self.job, self.patch, self.syntheses = pool, job, patch, syntheses
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.filled, self.drawn, self.seed = 0, 0, 1000
        self.lock = threading.Lock()
        self.running = True
        self.ready = threading.Event()
        for _ in range(2 * (os.cpu_count() or 2)):
            self._submit()

    def _submit(self) -> None:
        self.seed += 1
        synthesis = self.syntheses[self.seed % len(self.syntheses)]
        self.pool.apply_async(_draw, ((self.job.role, synthesis, self.seed, self.patch, "train", self.job.radius),),
                              callback=self._store, error_callback=self._failed)

    def _failed(self, error: BaseException) -> None:
        print(f"producer failed: {error!r}", flush=True)
        self.running = False
        self.ready.set()

    def _store(self, chunk: tuple[np.ndarray, np.ndarray]) -> None:
        x, y = chunk
        with self.lock:
            if self.x is None:
                self.x = np.zeros((RING, *x.shape[1:]), np.uint8)
                self.y = np.zeros((RING, *y.shape[1:]), y.dtype)
            if self.filled < RING:
                slots = np.arange(self.filled, min(RING, self.filled + len(x)))
                self.filled += len(slots)
            else:
                slots = np.random.default_rng(self.drawn).choice(RING, len(x), replace=False)
            self.x[slots], self.y[slots] = x[:len(slots)], y[:len(slots)]
            self.drawn += len(x)
        if self.filled >= min(RING, 2048):
            self.ready.set()
        if self.running:
            self._submit()

    def batches(self, size: int, rng: np.random.Generator):
        """Endless float batches, one random dihedral transform per batch."""
        self.ready.wait()
        if self.x is None:
            raise SystemExit("the synthesis failed in the producer processes (see above)")
        while True:
            with self.lock:
                idx = rng.integers(0, self.filled, size)
                x, y = self.x[idx], self.y[idx]
            k = int(rng.integers(0, 4))
            x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k, axes=(1, 2))
            if rng.random() < 0.5:
                x, y = x[:, :, ::-1], y[:, :, ::-1]
            yield _float(np.ascontiguousarray(x)), _float(np.ascontiguousarray(y), self.job.mapper)


def validation(job: Job, patch: int, val_size: int, synthesis: str) -> tuple[np.ndarray, np.ndarray]:
    """tools.train.cpu's fixed validation batch for the job (realistic for the mapper; realistic + disk when mixed)."""
    from tools.data import synth
    from tools.data.realistic import RealisticSource

    realistic = RealisticSource(PACK, "validation", VAL_SEED)
    if job.mapper:
        return realistic.radius_cells(val_size, patch) if job.radius else realistic.cells(val_size, patch)
    x, y = realistic.pairs(job.role, val_size, patch)
    if synthesis == "mixed":
        dx, dy = synth.PairSource(PACK, job.role, "validation", VAL_SEED, patch).batch(val_size)
        x, y = np.concatenate([x, dx]), np.concatenate([y, dy])
    return x, y


class DeviceStream:
    """Batches made on the accelerator from the training photos, for a generator taking `channels` inputs."""

    def __init__(self, job: Job, args: argparse.Namespace, channels: int) -> None:
        import jax

        from deblurd.restore.packs import pack_spec
        from tools.data import gpu_synth
        from tools.data import sources as data
        from tools.data.synth import load_photos

        spec = pack_spec(PACK)
        config = gpu_synth.SynthConfig.for_role(spec.blur, job.role, args.patch, chroma=args.chroma,
                                                optics_share=args.optics_share)
        self.synth = gpu_synth.DeviceSynth(load_photos("train", spec.working_width, data.load_rgb), config)
        self.channels, self.key = channels, jax.random.key(args.seed)
        val = gpu_synth.DeviceSynth(load_photos("validation", spec.working_width, data.load_rgb), config)
        x, y, _ = val.draw(jax.random.key(VAL_SEED), args.val_size, channels)
        self.val = (np.asarray(x), np.asarray(y))
        self.config, self.inputs = config, list(gpu_synth.CHANNELS[:channels])

    @property
    def drawn(self) -> int:
        return self.synth.drawn

    def batches(self, size: int, rng: np.random.Generator):
        return self.synth.batches(self.key, size, self.channels)


def write_tar(run: Path, tar_path: Path) -> Path:
    """The run as one tar, whole or not at all: on_device.sh copies every `*.tar` it sees while later jobs train,
    so a tar is written under a hidden temporary name and renamed into place."""
    tmp = temp_name(tar_path)
    try:
        with tarfile.open(tmp, "w") as tar:
            tar.add(run, arcname=run.name)
        os.replace(tmp, tar_path)
    finally:
        tmp.unlink(missing_ok=True)
    return tar_path


def train_job(job: Job, args: argparse.Namespace, pool) -> Path:
    """Trains one job for its seconds and returns the tar of its run folder."""
    import keras

    from deblurd.restore.manifest import WIENER_SIGMA
    from tools.train import losses, models

    keras.utils.set_random_seed(args.seed)
    device = args.synth == "device" and not job.mapper
    synthesis = "realistic" if job.mapper else "device" if device else args.synthesis
    patch = args.map_patch if job.mapper else args.patch
    batch = args.map_batch if job.mapper else args.batch
    name = f"{PACK}-{job.role}-supervised-{job.arch}-{synthesis}"
    net = models.MAPPERS[job.arch]() if job.mapper else models.ARCHITECTURES[job.arch]()
    if device:
        ring: Ring | DeviceStream = DeviceStream(job, args, int(net.input_shape[-1]))
        val = ring.val
    else:
        ring = Ring(pool, job, patch, ("realistic",) if synthesis == "realistic" else ("realistic", "disk"))
        val = validation(job, patch, args.val_size, synthesis)
    init = Path(args.init_dir) / name / "final.weights.h5" if args.init_dir else None
    if init and init.exists():
        net.load_weights(init)
        print(f"{name}: warm start from {init}", flush=True)

    loss = losses.radius_loss if job.radius else losses.mapper_loss if job.mapper else losses.charbonnier
    net.compile(optimizer=keras.optimizers.Adam(args.lr, clipnorm=args.clipnorm or None), loss=loss, jit_compile=True)
    log: list[tuple[int, float, str]] = []

    def score() -> float:
        pred = net.predict(val[0], batch_size=64, verbose=0)
        if job.radius:
            return -losses.radius_mae(pred, val[1])
        if job.mapper:
            textured = val[1][..., 1] == 1.0
            return float(np.mean(pred.argmax(-1)[textured] == val[1][..., 0][textured]))
        return float(10 * np.log10(1.0 / max(float(np.mean((np.clip(pred, 0, 1) - val[1]) ** 2)), 1e-12)))

    class Clock(keras.callbacks.Callback):
        """A linear warm-up over --warmup-steps, set per epoch (Adam's first full-size steps knock a refiner off
        its Wiener channel), a cosine over the job's seconds down to 2 %; a loss row per epoch, a score every 5."""

        def on_train_begin(self, logs=None):
            self.start = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            done = min(1.0, (time.time() - self.start) / job.seconds)
            warm = min(1.0, (epoch + 1) * args.epoch_steps / max(1, args.warmup_steps))
            self.model.optimizer.learning_rate = warm * args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * done)))

        def on_epoch_end(self, epoch, logs=None):
            steps = (epoch + 1) * args.epoch_steps
            over = time.time() - self.start >= job.seconds
            val_text = f"{score():.4f}" if over or (epoch + 1) % 5 == 0 else ""
            log.append((steps, float(logs["loss"]), val_text))
            print(f"{name}: step {steps} loss {logs['loss']:.5f} val {val_text or '-'} "
                  f"({time.time() - self.start:.0f} s, {ring.drawn} samples drawn)", flush=True)
            if over:
                self.model.stop_training = True

    rng = np.random.default_rng(args.seed)
    started = time.time()
    net.fit(ring.batches(batch, rng), steps_per_epoch=args.epoch_steps, epochs=1_000_000, verbose=0,
            callbacks=[Clock()])
    seconds = time.time() - started
    if isinstance(ring, Ring):
        ring.running = False
    steps = log[-1][0]
    run = Path(args.out) / name
    run.mkdir(parents=True, exist_ok=True)
    bare = models.MAPPERS[job.arch]() if job.mapper else models.ARCHITECTURES[job.arch]()
    bare.set_weights(net.get_weights())
    bare.save_weights(run / "final.weights.h5")  # without the optimizer's state, which a compiled model saves
    (run / "losses.csv").write_text("step,loss,val\n" + "".join(f"{s},{loss:.6f},{v}\n" for s, loss, v in log))
    init_dir = f" --init-dir {args.init_dir}" if args.init_dir else ""
    sizes = f"--map-batch {batch} --map-patch {patch}" if job.mapper else f"--batch {batch} --patch {patch}"
    leg = (f"python -m tools.train.gpu train --out {args.out}{init_dir} --job {job.role}:{job.arch}:{job.seconds:g} "
           f"{sizes} --lr {args.lr} --warmup-steps {args.warmup_steps} --clipnorm {args.clipnorm:g} " +
           (f"--synth device --chroma {args.chroma:g} --optics-share {args.optics_share:g}"
            if args.synth == "device" else f"--synthesis {synthesis}"))
    meta = {
        "seconds": seconds, "pack": PACK, "role": job.role, "recipe": "supervised", "arch": job.arch,
        "steps": steps, "steps_done": steps, "batch": batch, "patch": patch, "loss": "cross-entropy per cell"
        if job.mapper and not job.radius else "radius Huber + confidence" if job.radius else "charbonnier",
        "synthesis": synthesis, "lr": args.lr, "seed": args.seed,
        "val_size": args.val_size, "samples_drawn": ring.drawn, "final_val": float(log[-1][2] or score()),
        "legs": [leg], "machine": machine("device" if device else "cpu"),
        "init_from": str(init) if init and init.exists() else None, "wiener_sigma": WIENER_SIGMA,
    }
    if isinstance(ring, DeviceStream):
        meta["device_synthesis"] = {**dataclasses.asdict(ring.config), "inputs": ring.inputs}
    if init and init.exists():
        prior = json.loads((init.parent / "run.json").read_text())
        meta["legs"] = prior.get("legs", []) + [leg]
        meta["seconds_before"] = float(prior.get("seconds", 0)) + float(prior.get("seconds_before", 0))
    (run / "run.json").write_text(json.dumps(meta, indent=2))
    tar_path = write_tar(run, Path(args.out) / f"{name}.tar")
    print(f"{name}: {steps} steps in {seconds:.0f} s, {ring.drawn} samples drawn, validation "
          f"{meta['final_val']:.4f} -> {tar_path}", flush=True)
    return tar_path


def machine(synth: str = "cpu") -> str:
    """Where a job ran: the GPU's name when JAX sees one, else the CPU; where the synthesis ran; the Keras backend."""
    import keras

    backend = keras.backend.backend()
    kind = f"{platform.machine()} CPU"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        kind = device.device_kind if device.platform == "gpu" else kind
        backend = f"JAX {jax.__version__}"
    where = "synthesis on the device" if synth == "device" else f"{os.cpu_count()} CPU cores for the synthesis"
    return f"{kind}, {where}; Keras {keras.__version__} on {backend}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    photos = sub.add_parser("photos", help="write the photos of both splits into one folder to carry")
    photos.add_argument("--out", type=Path, required=True)
    train = sub.add_parser("train", help="train jobs on this machine's accelerator")
    train.add_argument("--out", type=Path, required=True, help="folder for the run folders and their tars")
    train.add_argument("--job", type=Job.parse, action="append", required=True, metavar="ROLE:ARCH:SECONDS",
                       help="semi or heavy with a generator architecture, or classifier with a blur mapper")
    train.add_argument("--init-dir", default=None, help="runs folder holding earlier runs of the same names to "
                                                         "warm-start from")
    train.add_argument("--synthesis", default="mixed", choices=["realistic", "mixed"],
                       help="what the CPU producers draw (--synth cpu)")
    train.add_argument("--synth", default="cpu", choices=["cpu", "device"],
                       help="cpu: producer processes fill a ring buffer; device: the accelerator makes every batch "
                            "(uniform defocus disks, tools/data/gpu_synth.py)")
    train.add_argument("--chroma", type=float, default=0.0,
                       help="--synth device: largest relative radius change of R and B (chromatic aberration)")
    train.add_argument("--optics-share", type=float, default=0.5,
                       help="--synth device: share of samples through a real lens and camera (linear light, lens "
                            "PSF, sharpening) rather than an ideal disk, as the CPU's mixed synthesis mixes them")
    train.add_argument("--batch", type=int, default=32)
    train.add_argument("--patch", type=int, default=128)
    train.add_argument("--map-batch", type=int, default=32)
    train.add_argument("--map-patch", type=int, default=192)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--clipnorm", type=float, default=1.0,
                       help="clip each gradient to this norm (0: off); without it a Wiener refiner at full learning "
                            "rate collapsed onto its Wiener channel")
    train.add_argument("--epoch-steps", type=int, default=200)
    train.add_argument("--warmup-steps", type=int, default=1000, help="linear learning-rate warm-up")
    train.add_argument("--val-size", type=int, default=256)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--workers", type=int, default=0, help="producer processes (0 = all cores but one)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "photos":
        print(f"{export_photos(args.out)} photos in {args.out} "
              f"({sum(f.stat().st_size for f in args.out.rglob('*.jpg')) / 1e6:.1f} MB)")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.synth == "device" and not any(job.mapper for job in args.job):
        for job in args.job:
            train_job(job, args, None)
        return
    workers = args.workers or max(1, (os.cpu_count() or 2) - 1)
    with mp.get_context("spawn").Pool(workers) as pool:
        for job in args.job:
            train_job(job, args, pool)


if __name__ == "__main__":
    main()
