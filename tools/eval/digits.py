"""The first seed paper's protocol for the digit packs (mnist, fashion-mnist): test images resized to 256x256 (the
ground truth), Gaussian blur of sigma pixels at that size, 8-bit. Table 2 (semi = sigma 10, heavy = sigma 26) for
the generator of the class and for the full route, and the robustness sweep over sigma through the full route.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deblurd.optics import blur
from deblurd.restore.router import Router
from tools.data import sources as data
from tools.eval.sweep import (
    INPUT,
    ROUTED,
    Extras,
    assemble,
    classifier_targets,
    classify_uniform,
    run_sweep,
    sample_indices,
    target,
)

PAPER_TABLE2 = {"mnist": {"l1": 0.1323, "l2": 0.1295, "ssim": 0.7448, "psnr": 15.12},
                "fashion-mnist": {"l1": 0.1598, "l2": 0.0962, "ssim": 0.5794, "psnr": 16.32}}
DIGIT_LEVELS = {"semi": 10.0, "heavy": 26.0}
DIGIT_TARGETS = {"mnist": {"semi": (28.0, 0.90), "heavy": (24.0, 0.90)},
                 "fashion-mnist": {"semi": (28.0, 0.90), "heavy": (24.0, 0.80)}}
"""(PSNR dB, SSIM) the full route must reach at each Table 2 level."""
SIGMA50_PSNR = 20.0


def digit_degrade(truth: np.ndarray, sigma: float, key: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The seed protocol's input: Gaussian sigma at 256x256, 8-bit (deterministic, so the key is unused)."""
    return blur.paper_blur(truth, sigma), blur.gaussian_psf(sigma)


def direct_rows(router: Router, levels: dict[str, float], prefix: str = "ours") -> Extras:
    """Route (a): the generator of the named class at that class's level, whatever the classifier says."""
    def extras(amount: float, blurred: np.ndarray, psf: np.ndarray) -> dict[str, np.ndarray]:
        return {f"{prefix}, {role} generator": router.restore(blurred, role)
                for role, a in levels.items() if a == amount}
    return extras


def evaluate_digits(router: Router, limit: int | None, seed: int) -> dict:
    """Table 2 at semi and heavy, the sigma sweep through the full route, and the classifier's confusion."""
    name = router.pack.manifest.name
    images = data.digits(name, "test")
    idx = sample_indices(len(images), limit, seed)
    truths = [blur.paper_upscale(images[i]) for i in idx]
    bands = router.pack.manifest.blur
    sweep = run_sweep(router, truths, blur.PAPER_SWEEP_SIGMAS, digit_degrade, bands,
                      direct_rows(router, DIGIT_LEVELS), seed)
    uniform = classify_uniform(router, truths, digit_degrade, bands, 1, seed + 1)
    result = assemble(sweep, DIGIT_LEVELS, blur.PAPER_SWEEP_SIGMAS, uniform, "sigma")
    result |= {"samples": len(idx), "split": f"{name} test split, {len(idx)} of {len(images)} images",
               "reference": {"seed paper, Table 2 (level not stated)": PAPER_TABLE2[name]},
               "targets": digit_targets(name, result),
               "notes": ["Ground truth: test image resized bicubic to 256x256; input: Gaussian blur of sigma pixels "
                         "at 256x256, reflected borders, 8-bit (deblurd.optics.blur.paper_blur).",
                         "Targets are checked on the full route (classifier, then the class's generator or "
                         "pass-through), the path the daemon takes."]}
    return result


def digit_targets(name: str, result: dict) -> list[dict]:
    out = []
    for level, (min_psnr, min_ssim) in DIGIT_TARGETS[name].items():
        scores = result["levels"][level]["rows"][ROUTED]
        sigma = DIGIT_LEVELS[level]
        out += [target(f"{level} (sigma {sigma:g}) full-route PSNR", scores["psnr"], ">=", min_psnr),
                target(f"{level} (sigma {sigma:g}) full-route SSIM", scores["ssim"], ">=", min_ssim)]
    points = {p["amount"]: p for p in result["sweep"]}
    out.append(target("sigma 50 full-route PSNR", points[50.0][ROUTED]["psnr"], ">=", SIGMA50_PSNR))
    for metric in ("psnr", "ssim"):
        gains = {a: p[ROUTED][metric] - p[INPUT][metric] for a, p in points.items()}
        worst = min(gains, key=gains.get)
        out.append(target(f"full route {metric.upper()} >= blurred input at every sigma (worst: sigma {worst:g})",
                          gains[worst], ">=", 0.0))
    return out + classifier_targets(result)
