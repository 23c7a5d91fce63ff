"""Classical deconvolution given the true PSF: the yardsticks every restorer is reported beside.

- `wiener`: frequency-domain Wiener filter (deblurd/optics/wiener.py, shared with the non-blind generators' Wiener
  channel). Nothing is tuned on the photos it is scored on.
- `richardson_lucy`: scikit-image's Richardson-Lucy for a given number of iterations.

Neither lets the borders ring: Wiener filters the image's mirror extension (2H x 2W), periodic without jumps (the
DCT route to reflective boundaries); Richardson-Lucy runs on a mirrored margin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from skimage import restoration
from skimage.metrics import peak_signal_noise_ratio

from deblurd.optics.wiener import wiener


def richardson_lucy(image: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    """scikit-image's Richardson-Lucy with a mirrored margin two PSFs wide (its convolutions are zero-padded, so
    the array's own edge would darken and ring); float32 clipped to [0, 1]."""
    m = 2 * max(psf.shape)
    x = np.pad(np.clip(image.astype(np.float64), 0.0, 1.0), m, mode="symmetric")
    out = restoration.richardson_lucy(x, psf.astype(np.float64) / psf.sum(), num_iter=iterations, clip=True)
    return np.clip(out[m:-m, m:-m], 0.0, 1.0).astype(np.float32)


def best_iterations(candidates: Sequence[int], pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
    """Richardson-Lucy's iteration count with the best mean PSNR on (truth, blurred, psf) pairs, which must come
    from TRAIN photos, never the photos the report scores."""
    def score(n: int) -> float:
        return float(np.mean([peak_signal_noise_ratio(t, richardson_lucy(b, p, n), data_range=1.0)
                              for t, b, p in pairs]))
    return max(candidates, key=score)


def best_sigma(candidates: Sequence[float], pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> float:
    """Wiener's noise level with the best mean PSNR on (truth, blurred, psf) pairs from TRAIN photos: where the
    noise is not white (JPEG, ISP softening), the high-frequency noise one can measure on a frame is lower than
    the level that serves Wiener best, so it is tuned like Richardson-Lucy's iterations, never on scored photos."""
    def score(sigma: float) -> float:
        return float(np.mean([peak_signal_noise_ratio(t, wiener(b, p, sigma), data_range=1.0) for t, b, p in pairs]))
    return max(candidates, key=score)


Baseline = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(blurred image, true PSF) -> restored image."""


def baselines(sigma: float, rl_iterations: int) -> dict[str, Baseline]:
    """The two report rows, named as every report names them."""
    return {"Wiener (true PSF)": lambda b, p: wiener(b, p, sigma),
            "Richardson-Lucy (true PSF)": lambda b, p: richardson_lucy(b, p, rl_iterations)}
