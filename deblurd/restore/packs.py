"""What each model pack is built for, before it exists: the one place its facts are typed.

Training (tools/data/synth.py, tools/train/cpu.py) reads these facts to build a pack; tools/train/export.py writes
them into the pack's manifest, and from then on the manifest is the source of truth (the daemon, the evaluation and
the samples read the manifest, never this registry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deblurd.optics.blur import BlurDefinition, NoiseModel

Protocol = Literal["seed-paper", "photo"]


@dataclass(frozen=True)
class PackSpec:
    """A pack's build facts: protocol, working scale, tiles and blur classes."""

    name: str
    protocol: Protocol
    """seed-paper: 28x28 digit images under the first paper's Gaussian protocol; photo: defocused photographs."""
    working_width: int
    tile: int
    """Generator input tile (square), in pixels at the working scale."""
    overlap: int
    """Overlap of neighbouring generator tiles when restoring."""
    classifier_crop: int
    """Input crop of a per-crop classifier; a dense blur-map classifier takes `tile`-sized tiles instead."""
    blur: BlurDefinition
    version: str = "1.0"
    """Written into the manifest at export; bumped when a pack's models or blur classes change meaning."""
    map_overlap: int = 64
    """Overlap of a dense blur map's tiles: about a quarter of its context, so every cell is scored well inside
    some tile."""
    synthesis: Literal["disk", "realistic", "mixed"] = "disk"
    """What the shipped models' last training legs saw (tools/train/cpu.py --synthesis); export takes runs of it."""


_SEED_PAPER_BLUR = BlurDefinition(psf="gaussian", unit="Gaussian sigma in pixels at 256x256 (seed paper protocol)",
                                  sharp_max=4.0, semi_max=17.0, heavy_max=56.0,
                                  train_semi=(3.0, 19.0), train_heavy=(15.0, 56.0))
_PHOTO_WIDTH = 640
# Camera frames arrive after the ISP's denoiser, so the residual noise is mild: the equivalent of ~2,000
# photo-electrons at white (varied 0.5-2x) plus a little read noise, some motion and occasional JPEG.
_PHOTO_BLUR = BlurDefinition(psf="defocus", unit=f"defocus disk radius in pixels at {_PHOTO_WIDTH} px frame width",
                             sharp_max=1.0, semi_max=3.0, heavy_max=16.0, train_semi=(0.8, 3.4),
                             train_heavy=(2.6, 16.0),
                             noise=NoiseModel(photons=2000.0, read_noise=0.002, soften=0.5, max_motion=1.5,
                                              jpeg_probability=0.2))

PACKS: dict[str, PackSpec] = {
    "photo": PackSpec("photo", "photo", _PHOTO_WIDTH, tile=256, overlap=32, classifier_crop=128, blur=_PHOTO_BLUR,
                      version="2.1", synthesis="mixed"),
    "mnist": PackSpec("mnist", "seed-paper", 28, tile=32, overlap=0, classifier_crop=32, blur=_SEED_PAPER_BLUR),
    "fashion-mnist": PackSpec("fashion-mnist", "seed-paper", 28, tile=32, overlap=0, classifier_crop=32,
                              blur=_SEED_PAPER_BLUR),
}


def pack_spec(name: str) -> PackSpec:
    """The registered pack of that name; a KeyError names the packs there are."""
    try:
        return PACKS[name]
    except KeyError:
        raise KeyError(f"no pack named {name!r}: known packs are {', '.join(PACKS)}") from None
