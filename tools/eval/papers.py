"""The seed papers' architectures as evaluation rows: their trained Keras networks, run over overlapping tiles.

TensorFlow takes seconds to import and only these rows need it, so it is imported when a trained run exists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deblurd.restore.tiling import run_tiled

if TYPE_CHECKING:
    import keras

REPO = Path(__file__).resolve().parents[2]
PAPER_ARCHS = {"autoencoder": "second paper's CNN autoencoder", "pix2pix": "first paper's pix2pix U-Net"}
PAPER_TILE, PAPER_OVERLAP = 256, 32


def paper_restorers(runs: Path, role: str) -> tuple[dict[str, Callable[[np.ndarray], np.ndarray]], list[str]]:
    """Keras restorers of the seed papers' architectures trained for this role, and notes on the ones missing."""
    found, notes = {}, []
    shown = runs.relative_to(REPO) if runs.is_absolute() and runs.is_relative_to(REPO) else runs
    for arch, title in PAPER_ARCHS.items():
        run = next(iter(sorted(runs.glob(f"photo-{role}-*-{arch}"))), None)
        if run is None or not (run / "run.json").exists():
            notes.append(f"{title} ({arch}), {role}: skipped, no trained run under {shown}/photo-{role}-*-{arch}")
            continue
        from tools.train.export import load_trained

        net, meta = load_trained(run)
        state = "partly trained (latest checkpoint)" if meta.get("partial") else "final weights"
        legs = meta.get("legs") or ["(not recorded)"]
        notes.append(f"{title} ({arch}), {role}: {run.name}, {meta.get('steps_done')} steps in "
                     f"{meta.get('seconds', 0) / 60:.0f} min, {state}, trained by `{'`, then `'.join(legs)}`; "
                     f"run in Keras over {PAPER_TILE}px tiles with {PAPER_OVERLAP}px overlap")
        found[f"{arch} (paper), {role}"] = _keras_tiled(net)
    return found, notes


def _keras_tiled(net: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    def restore(luma: np.ndarray) -> np.ndarray:
        tile = lambda t: np.asarray(net(t[None, :, :, None], training=False))[0, :, :, 0]  # noqa: E731
        return np.clip(run_tiled(luma, tile, (PAPER_TILE, PAPER_TILE), PAPER_OVERLAP), 0.0, 1.0)
    return restore
