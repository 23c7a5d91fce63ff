"""The evaluation's common ground: metrics, the sweep of images x blur amounts through the daemon's route, the
classifier's confusion matrices, and target rows. The protocols (eval_digits, eval_photo) build on it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from deblurd.frames import SEVERITY_LABELS
from deblurd.optics.blur import BlurDefinition
from deblurd.restore.router import Router

INPUT, ROUTED = "blurred input", "ours, full route"
METRICS = ("psnr", "ssim", "l1", "l2")
CLASSIFIER_ACCURACY = 0.95
EXAMPLES = 3

Degrade = Callable[[np.ndarray, float, Sequence[int]], tuple[np.ndarray, np.ndarray]]
"""(ground truth, blur amount, seed key) -> (blurred image, its true PSF)."""
Extras = Callable[[float, np.ndarray, np.ndarray], dict[str, np.ndarray]]
"""(blur amount, blurred image, true PSF) -> predictions of further rows at that amount (empty off the levels)."""
def metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PSNR and SSIM (skimage, data_range 1), L1 = mean |x - y| and L2 = mean (x - y)^2, all on [0, 1]."""
    pred, truth = pred.astype(np.float64), truth.astype(np.float64)
    diff = pred - truth
    return {"psnr": float(peak_signal_noise_ratio(truth, pred, data_range=1.0)),
            "ssim": float(structural_similarity(truth, pred, data_range=1.0)),
            "l1": float(np.mean(np.abs(diff))), "l2": float(np.mean(diff**2))}


class Tally:
    """Per-image metrics of each (amount, row), averaged at the end as the paper averages over its test set."""

    def __init__(self) -> None:
        self.scores: dict[tuple[float, str], list[dict[str, float]]] = defaultdict(list)

    def add(self, amount: float, row: str, pred: np.ndarray, truth: np.ndarray) -> None:
        self.scores[(amount, row)].append(metrics(pred, truth))

    def mean(self, amount: float, row: str) -> dict[str, float]:
        return {k: round(float(np.mean([s[k] for s in self.scores[(amount, row)]])), 6) for k in METRICS}

    def rows(self, amount: float) -> list[str]:
        return [row for a, row in self.scores if a == amount]


@dataclass
class Sweep:
    """What one pass over (image, blur amount) collected."""

    tally: Tally = field(default_factory=Tally)
    true: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    routes: dict[float, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[tuple[int, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    misroute_db: list[float] = field(default_factory=list)
    """Per misrouted frame: PSNR of the classifier's route minus that of its true class's route."""


def sample_indices(total: int, limit: int | None, seed: int) -> np.ndarray:
    """All indices, or a seeded random subset of `limit` of them, sorted so that runs are comparable."""
    if limit is None or limit >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, limit, replace=False))


def center_window(image: np.ndarray, size: int | None) -> np.ndarray:
    """The central size x size window (the whole image for None), so example figures show detail."""
    if size is None:
        return image
    y, x = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[max(y, 0):y + size, max(x, 0):x + size]


def run_sweep(router: Router, truths: Sequence[np.ndarray], amounts: Sequence[float], degrade: Degrade,
              bands: BlurDefinition, extras: Extras, seed: int, window: int | None = None) -> Sweep:
    """Degrade every image at every amount and score the blurred input, the extra rows and the full route.

    An image's seed key is the same at every amount, so its noise draw stays put and the sweep isolates the blur."""
    out = Sweep()
    for i, truth in enumerate(tqdm(truths, desc="images x blur amounts", unit="img")):
        for amount in amounts:
            blurred, psf = degrade(truth, amount, (seed, i))
            out.tally.add(amount, INPUT, blurred, truth)
            for row, pred in extras(amount, blurred, psf).items():
                out.tally.add(amount, row, pred, truth)
            severity, routed = router.route_luma(blurred)
            label, true_label = severity.label, bands.label(amount)
            out.tally.add(amount, ROUTED, routed, truth)
            if label != true_label:
                right = router.restore(blurred, true_label)
                out.misroute_db.append(peak_signal_noise_ratio(truth, routed, data_range=1.0)
                                       - peak_signal_noise_ratio(truth, right, data_range=1.0))
            out.true.append(true_label)
            out.predicted.append(label)
            out.routes[amount][label] += 1
            if i < EXAMPLES:
                out.examples[(i, amount)] = tuple(center_window(a, window) for a in (blurred, routed, truth))
    return out


def classify_uniform(router: Router, truths: Sequence[np.ndarray], degrade: Degrade, bands: BlurDefinition,
                     draws: int, seed: int) -> tuple[list[str], list[str]]:
    """Classifier verdicts on frames whose blur is drawn uniformly within each class's range."""
    rng = np.random.default_rng(seed)
    true, predicted = [], []
    for i, truth in enumerate(tqdm(truths, desc="classifier frames", unit="img")):
        for label in SEVERITY_LABELS:
            for d in range(draws):
                amount = float(rng.uniform(*bands.class_range(label)))
                blurred, _ = degrade(truth, amount, (seed, i, SEVERITY_LABELS.index(label), d))
                true.append(label)
                predicted.append(router.decide(blurred)[0].label)
    return true, predicted


def confusion(true: Sequence[str], predicted: Sequence[str]) -> dict:
    """Rows are the true class, columns the classifier's verdict."""
    index = {n: i for i, n in enumerate(SEVERITY_LABELS)}
    matrix = np.zeros((3, 3), int)
    np.add.at(matrix, ([index[t] for t in true], [index[p] for p in predicted]), 1)
    return {"classes": list(SEVERITY_LABELS), "matrix": matrix.tolist(), "samples": len(true),
            "accuracy": round(float(np.trace(matrix)) / max(len(true), 1), 4)}


def assemble(sweep: Sweep, levels: dict[str, float], amounts: Sequence[float], uniform: tuple[list[str], list[str]],
             unit: str) -> dict:
    """Means per level row and sweep point, and the classifier's two confusion matrices."""
    t = sweep.tally
    return {"unit": unit,
            "levels": {role: {"amount": a, "rows": {row: t.mean(a, row) for row in t.rows(a)}}
                       for role, a in levels.items()},
            "sweep": [{"amount": a, INPUT: t.mean(a, INPUT), ROUTED: t.mean(a, ROUTED),
                       "routes": {n: sweep.routes[a][n] for n in SEVERITY_LABELS}} for a in amounts],
            "classifier": {f"at the sweep's {unit} values": confusion(sweep.true, sweep.predicted),
                           f"{unit} uniform within each class": confusion(*uniform)},
            "misroutes": {"frames": len(sweep.misroute_db), "of": len(sweep.true),
                          "mean_db_vs_true_route":
                              round(float(np.mean(sweep.misroute_db)), 3) if sweep.misroute_db else 0.0,
                          "worst_db_vs_true_route":
                              round(float(np.min(sweep.misroute_db)), 3) if sweep.misroute_db else 0.0},
            "examples": sweep.examples}


def target(name: str, value: float, op: str, threshold: float) -> dict:
    ok = value >= threshold if op == ">=" else value <= threshold
    margin = value - threshold if op == ">=" else threshold - value
    return {"target": name, "value": round(float(value), 4), "op": op, "threshold": threshold, "pass": bool(ok),
            "margin": round(float(margin), 4)}


def classifier_targets(result: dict) -> list[dict]:
    return [target(f"classifier accuracy, {name}", c["accuracy"], ">=", CLASSIFIER_ACCURACY)
            for name, c in result["classifier"].items()]
