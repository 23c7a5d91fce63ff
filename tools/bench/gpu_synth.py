"""Samples per second of the device synthesis alone (tools/data/gpu_synth.py) on whatever JAX runs on here.

    python -m tools.bench.gpu_synth [--batch 64] [--patch 128] [--seconds 10]

Times whole batches (compiled once, then drawn until --seconds pass, each waited for) for the photo pack's semi and
heavy training radii, luminance blur and per-channel (chromatic) blur, with and without the non-blind inputs
(radius map and Wiener). Content does not change the arithmetic, so the pool is random photos of the working size.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from deblurd.restore.packs import pack_spec
from tools.data.gpu_synth import DeviceSynth, SynthConfig

CASES = (("semi", 0.0, 1), ("heavy", 0.0, 1), ("heavy", 0.05, 1), ("heavy", 0.0, 3))
"""(role, chroma, net input channels): blind luminance, chromatic blur, and the non-blind inputs with Wiener."""


def rate(synth: DeviceSynth, batch: int, channels: int, seconds: float) -> tuple[float, float]:
    """Samples per second of wall clock and per second of this process's CPU time (what a shared CPU machine can
    compare), over about `seconds` after one compiling draw."""
    key = jax.random.key(0)
    jax.block_until_ready(synth.draw(key, batch, channels))
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        key, step = jax.random.split(key)
        jax.block_until_ready(synth.draw(step, batch, channels))
        done += batch
    return done / (time.perf_counter() - start), done / max(time.process_time() - cpu, 1e-9)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    definition = pack_spec("photo").blur
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(8)]
    device = jax.devices()[0]
    print(f"JAX {jax.__version__} on {device.platform} ({device.device_kind}), batch {args.batch}, "
          f"patch {args.patch}")
    for role, chroma, channels in CASES:
        config = SynthConfig.for_role(definition, role, args.patch, chroma=chroma)
        synth = DeviceSynth(photos, config)
        wall, cpu = rate(synth, args.batch, channels, args.seconds)
        print(f"{role:5s} radii {config.min_radius:g}-{config.max_radius:g} chroma {chroma:g} channels {channels}: "
              f"{wall:7.0f} samples/s ({cpu:.0f} per CPU second)", flush=True)


if __name__ == "__main__":
    main()
