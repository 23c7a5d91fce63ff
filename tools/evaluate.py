"""Evaluate a model pack: a Markdown and a JSON report plus PNG figures under reports/<pack>/.

Digit packs (mnist, fashion-mnist) follow the first seed paper's protocol: test images resized to 256x256 (the
ground truth), Gaussian blur of sigma pixels at that size, 8-bit. Table 2 (semi = sigma 10, heavy = sigma 26) is
reported for the generator of the class and for the full route, and the robustness sweep over sigma for the full
route. The photo pack is scored on its validation photos at its semi and heavy defocus radii, with sensor noise,
beside Wiener and Richardson-Lucy (both given the true PSF) and the seed papers' architectures where trained.
Every model of the pack runs through deblurd.inference (the daemon's own scaling, tiling and routing).

    python -m tools.evaluate --pack fashion-mnist --limit 500
    python -m tools.evaluate --pack photo --update-manifest
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import cv2
import matplotlib
import numpy as np
from skimage import restoration
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deblurd import blur  # noqa: E402
from deblurd.frames import SEVERITY_LABELS  # noqa: E402
from deblurd.inference import ModelPack, working_size  # noqa: E402
from deblurd.manifest import MANIFEST_NAME, load_manifest  # noqa: E402
from deblurd.store import AtomicWriter  # noqa: E402
from deblurd.tiling import run_tiled  # noqa: E402
from tools import data  # noqa: E402

if TYPE_CHECKING:
    import keras

REPO = Path(__file__).resolve().parent.parent
PACKS = ("photo", "mnist", "fashion-mnist")
INPUT, ROUTED = "blurred input", "ours, full route"
METRICS = ("psnr", "ssim", "l1", "l2")

PAPER_TABLE2 = {"mnist": {"l1": 0.1323, "l2": 0.1295, "ssim": 0.7448, "psnr": 15.12},
                "fashion-mnist": {"l1": 0.1598, "l2": 0.0962, "ssim": 0.5794, "psnr": 16.32}}
DIGIT_LEVELS = {"semi": 10.0, "heavy": 26.0}
DIGIT_TARGETS = {"mnist": {"semi": (28.0, 0.90), "heavy": (24.0, 0.90)},
                 "fashion-mnist": {"semi": (28.0, 0.90), "heavy": (24.0, 0.80)}}
"""(PSNR dB, SSIM) the full route must reach at each Table 2 level."""
SIGMA50_PSNR = 20.0
CLASSIFIER_ACCURACY = 0.95

PHOTO_LEVELS = {"semi": 2.0, "heavy": 5.0}
PHOTO_SWEEP_RADII = tuple(float(r) for r in range(8))
PHOTO_GAIN_DB = {"semi": 3.5, "heavy": 2.5}
PHOTO_OVER_RL_DB = 1.0
INT8_FLOAT_DB = 0.3
PHOTO_CLASSIFIER_DRAWS = 6
"""Frames per class and validation photo for the photo classifier's confusion matrix."""
WIENER_BALANCES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
RL_ITERATIONS = (1, 2, 3, 5, 10, 20, 40)
TUNING_PHOTOS = 2
PAPER_ARCHS = {"autoencoder": "second paper's CNN autoencoder", "pix2pix": "first paper's pix2pix U-Net"}
PAPER_TILE, PAPER_OVERLAP = 256, 32
EXAMPLES = 3
PHOTO_EXAMPLE_WINDOW = 192

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


def sample_indices(total: int, limit: Optional[int], seed: int) -> np.ndarray:
    """All indices, or a seeded random subset of `limit` of them, sorted so that runs are comparable."""
    if limit is None or limit >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, limit, replace=False))


def center_window(image: np.ndarray, size: Optional[int]) -> np.ndarray:
    """The central size x size window (the whole image for None), so example figures show detail."""
    if size is None:
        return image
    y, x = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[max(y, 0):y + size, max(x, 0):x + size]


def run_sweep(pack: ModelPack, truths: Sequence[np.ndarray], amounts: Sequence[float], degrade: Degrade,
              bands: blur.SeverityBands, extras: Extras, seed: int, window: Optional[int] = None) -> Sweep:
    """Degrade every image at every amount and score the blurred input, the extra rows and the full route.

    An image's seed key is the same at every amount, so its noise draw stays put and the sweep isolates the blur."""
    out = Sweep()
    for i, truth in enumerate(tqdm(truths, desc="images x blur amounts", unit="img")):
        for amount in amounts:
            blurred, psf = degrade(truth, amount, (seed, i))
            out.tally.add(amount, INPUT, blurred, truth)
            for row, pred in extras(amount, blurred, psf).items():
                out.tally.add(amount, row, pred, truth)
            severity, routed = pack.route_luma(blurred)
            label, true_label = severity.label, bands.label(amount)
            out.tally.add(amount, ROUTED, routed, truth)
            if label != true_label:
                right = blurred if true_label == "sharp" else pack.restorers[true_label].restore(blurred)
                out.misroute_db.append(peak_signal_noise_ratio(truth, routed, data_range=1.0)
                                       - peak_signal_noise_ratio(truth, right, data_range=1.0))
            out.true.append(true_label)
            out.predicted.append(label)
            out.routes[amount][label] += 1
            if i < EXAMPLES:
                out.examples[(i, amount)] = tuple(center_window(a, window) for a in (blurred, routed, truth))
    return out


def classify_uniform(pack: ModelPack, truths: Sequence[np.ndarray], degrade: Degrade, bands: blur.SeverityBands,
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
                predicted.append(pack.classifier.classify(blurred).label)
    return true, predicted


def confusion(true: Sequence[str], predicted: Sequence[str]) -> dict:
    """Rows are the true class, columns the classifier's verdict."""
    index = {n: i for i, n in enumerate(SEVERITY_LABELS)}
    matrix = np.zeros((3, 3), int)
    np.add.at(matrix, ([index[t] for t in true], [index[p] for p in predicted]), 1)
    return {"classes": list(SEVERITY_LABELS), "matrix": matrix.tolist(), "samples": len(true),
            "accuracy": round(float(np.trace(matrix)) / max(len(true), 1), 4)}


# --- seed protocol (digit packs) ----------------------------------------------------------------------------------

def digit_degrade(truth: np.ndarray, sigma: float, key: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The seed protocol's input: Gaussian sigma at 256x256, 8-bit (deterministic, so the key is unused)."""
    return blur.paper_blur(truth, sigma), blur.gaussian_psf(sigma)


def direct_rows(pack: ModelPack, levels: dict[str, float], prefix: str = "ours") -> Extras:
    """Route (a): the generator of the named class at that class's level, whatever the classifier says."""
    def extras(amount: float, blurred: np.ndarray, psf: np.ndarray) -> dict[str, np.ndarray]:
        return {f"{prefix}, {role} generator": pack.restorers[role].restore(blurred)
                for role, a in levels.items() if a == amount}
    return extras


def evaluate_digits(name: str, pack: ModelPack, limit: Optional[int], seed: int) -> dict:
    """Table 2 at semi and heavy, the sigma sweep through the full route, and the classifier's confusion."""
    images = data.digits(name, "test")
    idx = sample_indices(len(images), limit, seed)
    truths = [blur.paper_upscale(images[i]) for i in idx]
    bands = blur.BANDS[name]
    sweep = run_sweep(pack, truths, blur.PAPER_SWEEP_SIGMAS, digit_degrade, bands, direct_rows(pack, DIGIT_LEVELS),
                      seed)
    uniform = classify_uniform(pack, truths, digit_degrade, bands, 1, seed + 1)
    result = assemble(sweep, DIGIT_LEVELS, blur.PAPER_SWEEP_SIGMAS, uniform, "sigma")
    result |= {"samples": len(idx), "split": f"{name} test split, {len(idx)} of {len(images)} images",
               "reference": {"seed paper, Table 2 (level not stated)": PAPER_TABLE2[name]},
               "targets": digit_targets(name, result),
               "notes": ["Ground truth: test image resized bicubic to 256x256; input: Gaussian blur of sigma pixels "
                         "at 256x256, reflected borders, 8-bit (deblurd.blur.paper_blur).",
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


# --- photo pack ---------------------------------------------------------------------------------------------------

def photo_degrade(truth: np.ndarray, radius: float, key: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Defocus disk of the given radius with the pack's randomised noise model, seeded by the key."""
    rng = np.random.default_rng(list(key))
    spec = blur.PHOTO_NOISE.spec("defocus", radius, rng)
    return spec.apply(truth, rng), spec.psf()


def at_width(luma: np.ndarray, width: int) -> np.ndarray:
    """A photo narrower than the working width upscaled (bicubic) to it, so a radius means the same on every photo."""
    if luma.shape[1] >= width:
        return luma
    return np.clip(cv2.resize(luma, working_size(luma.shape, width), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def photo_truths(split: str, width: int, limit: Optional[int], seed: int) -> tuple[list[str], list[np.ndarray]]:
    """Names and luminance of the split's photos at the working width."""
    files = data.photo_files(split)
    chosen = [files[i] for i in sample_indices(len(files), limit, seed)]
    return [p.name for p in chosen], [at_width(data.load_luma(p, width), width) for p in chosen]


def _padded(deconvolve: Callable[[np.ndarray, np.ndarray], np.ndarray], image: np.ndarray,
            psf: np.ndarray) -> np.ndarray:
    """Deconvolve with a mirrored margin one PSF wide, so the FFT's wrap-around is not held against the baseline."""
    m = max(psf.shape)
    out = deconvolve(np.pad(image.astype(np.float64), m, mode="symmetric"), psf.astype(np.float64))
    return np.clip(out[m:-m, m:-m], 0.0, 1.0).astype(np.float32)


def wiener(image: np.ndarray, psf: np.ndarray, balance: float) -> np.ndarray:
    return _padded(lambda x, p: restoration.wiener(x, p, balance), image, psf)


def richardson_lucy(image: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    return _padded(lambda x, p: restoration.richardson_lucy(x, p, num_iter=iterations), image, psf)


def tune(method: Callable[[np.ndarray, np.ndarray, float], np.ndarray], candidates: Sequence[float],
         photos: Sequence[np.ndarray], radius: float, seed: int) -> float:
    """The candidate with the best mean PSNR on a few TRAIN photos, never on the validation photos we report."""
    pairs = [(p, *photo_degrade(p, radius, (seed, i, 7))) for i, p in enumerate(photos)]

    def score(c: float) -> float:
        return float(np.mean([peak_signal_noise_ratio(t, method(b, psf, c), data_range=1.0) for t, b, psf in pairs]))

    return max(candidates, key=score)


def paper_restorers(runs: Path, role: str) -> tuple[dict[str, Callable[[np.ndarray], np.ndarray]], list[str]]:
    """Keras restorers of the seed papers' architectures trained for this role, and notes on the ones missing."""
    found, notes = {}, []
    shown = runs.relative_to(REPO) if runs.is_absolute() and runs.is_relative_to(REPO) else runs
    for arch, title in PAPER_ARCHS.items():
        run = next(iter(sorted(runs.glob(f"photo-{role}-*-{arch}"))), None)
        if run is None or not (run / "run.json").exists():
            notes.append(f"{title} ({arch}), {role}: skipped, no trained run under {shown}/photo-{role}-*-{arch}")
            continue
        from tools.export import load_trained  # TensorFlow takes seconds to import; only these rows need it

        net, meta = load_trained(run)
        state = "partly trained (latest checkpoint)" if meta.get("partial") else "final weights"
        legs = meta.get("legs") or ["(not recorded)"]
        notes.append(f"{title} ({arch}), {role}: {run.name}, {meta.get('steps_done')} steps in "
                     f"{meta.get('seconds', 0) / 60:.0f} min, {state}, trained by `{'`, then `'.join(legs)}`; "
                     f"run in Keras over {PAPER_TILE}px tiles with {PAPER_OVERLAP}px overlap")
        found[f"{arch} (paper), {role}"] = _keras_tiled(net)
    return found, notes


def _keras_tiled(net: "keras.Model") -> Callable[[np.ndarray], np.ndarray]:
    def restore(luma: np.ndarray) -> np.ndarray:
        tile = lambda t: np.asarray(net(t[None, :, :, None], training=False))[0, :, :, 0]  # noqa: E731
        return np.clip(run_tiled(luma, tile, (PAPER_TILE, PAPER_TILE), PAPER_OVERLAP), 0.0, 1.0)
    return restore


def photo_rows(packs: dict[str, ModelPack], tuned: dict[str, dict[str, float]],
               papers: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]]) -> Extras:
    """At the semi and heavy radii: Wiener, Richardson-Lucy, our int8 and float generators, the papers' nets."""
    def extras(amount: float, blurred: np.ndarray, psf: np.ndarray) -> dict[str, np.ndarray]:
        rows = {}
        for role, radius in PHOTO_LEVELS.items():
            if radius != amount:
                continue
            rows["Wiener (true PSF)"] = wiener(blurred, psf, tuned[role]["wiener_balance"])
            rows["Richardson-Lucy (true PSF)"] = richardson_lucy(blurred, psf, int(tuned[role]["rl_iterations"]))
            for precision, pack in packs.items():
                rows[f"ours {precision}, {role} generator"] = pack.restorers[role].restore(blurred)
            rows |= {row: fn(blurred) for row, fn in papers[role].items()}
        return rows
    return extras


def evaluate_photo(packs: dict[str, ModelPack], precision: str, limit: Optional[int], seed: int, runs: Path) -> dict:
    """The photo pack at its semi and heavy radii beside classical deconvolution, a radius sweep, the classifier."""
    pack = packs[precision]
    width = pack.manifest.working_width or 640
    names, truths = photo_truths("validation", width, limit, seed)
    train_names, train = photo_truths("train", width, TUNING_PHOTOS, seed)
    tuned = {role: {"wiener_balance": tune(wiener, WIENER_BALANCES, train, r, seed),
                    "rl_iterations": tune(richardson_lucy, RL_ITERATIONS, train, r, seed)}
             for role, r in tqdm(PHOTO_LEVELS.items(), desc="tuning Wiener / Richardson-Lucy on train photos")}
    papers, paper_notes = {}, []
    for role in PHOTO_LEVELS:
        papers[role], notes = paper_restorers(runs, role)
        paper_notes += notes
    bands = blur.BANDS["photo"]
    sweep = run_sweep(pack, truths, PHOTO_SWEEP_RADII, photo_degrade, bands, photo_rows(packs, tuned, papers), seed,
                      PHOTO_EXAMPLE_WINDOW)
    uniform = classify_uniform(pack, truths, photo_degrade, bands, PHOTO_CLASSIFIER_DRAWS, seed + 1)
    result = assemble(sweep, PHOTO_LEVELS, PHOTO_SWEEP_RADII, uniform, "radius")
    result |= {"samples": len(truths), "split": f"validation photos ({len(truths)}): {', '.join(names)}",
               "tuning": {"photos": train_names, **tuned},
               "notes": [f"Degradation: defocus disk of the given radius in pixels at {width} px width, with the "
                         f"pack's noise model (deblurd.blur.PHOTO_NOISE: softening, mild motion, shot and read noise, "
                         f"sometimes JPEG): one seeded noise draw per photo, the same at every radius and for "
                         f"every row.",
                         f"Wiener balance and Richardson-Lucy iterations were tuned per level on TRAIN-split photos "
                         f"({', '.join(train_names)}), not on the validation photos: {json.dumps(tuned)}. Both get "
                         f"the true PSF and a mirrored margin against FFT wrap-around.",
                         "Photos narrower than the working width are upscaled (bicubic) to it first.",
                         f"Full-route rows use the {precision} models; gain targets are checked on the full route.",
                         boundary_note(bands, PHOTO_SWEEP_RADII, "radius")]
               + paper_notes}
    result["targets"] = photo_targets(result)
    return result


def boundary_note(bands: blur.SeverityBands, amounts: Sequence[float], unit: str) -> str:
    """Why accuracy at sweep values that sit exactly on a class boundary has a ceiling near one half there."""
    on_edge = [a for a in amounts if a in (bands.sharp_max, bands.semi_max)]
    if not on_edge:
        return f"No sweep {unit} lies on a class boundary."
    edges = ", ".join(f"{a:g}" for a in on_edge)
    ceiling = (len(amounts) - len(on_edge) / 2) / len(amounts)
    return (f"The sweep's {unit} values {edges} lie exactly on class boundaries (sharp <= {bands.sharp_max:g} < semi "
            f"<= {bands.semi_max:g} < heavy); a noisy frame there is as close to one class as to the other, so about "
            f"half of those frames go either way even for a perfect classifier, and accuracy at the sweep's values "
            f"tops out near {ceiling:.1%}. Either route serves a boundary frame (the generators' training ranges "
            f"overlap there); the uniform draw within each class is the fairer accuracy figure.")


def photo_targets(result: dict) -> list[dict]:
    out = []
    for role, radius in PHOTO_LEVELS.items():
        rows = result["levels"][role]["rows"]
        ours = rows[ROUTED]["psnr"]
        out += [target(f"{role} (radius {radius:g}) full-route gain over blurred input, dB",
                       ours - rows[INPUT]["psnr"], ">=", PHOTO_GAIN_DB[role]),
                target(f"{role} (radius {radius:g}) full-route margin over Richardson-Lucy, dB",
                       ours - rows["Richardson-Lucy (true PSF)"]["psnr"], ">=", PHOTO_OVER_RL_DB),
                target(f"{role} generator |int8 - float| PSNR, dB",
                       abs(rows[f"ours int8, {role} generator"]["psnr"] - rows[f"ours float, {role} generator"]["psnr"]),
                       "<=", INT8_FLOAT_DB)]
    return out + classifier_targets(result)


# --- results, targets, report -------------------------------------------------------------------------------------

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
                          "mean_db_vs_true_route": round(float(np.mean(sweep.misroute_db)), 3) if sweep.misroute_db else 0.0,
                          "worst_db_vs_true_route": round(float(np.min(sweep.misroute_db)), 3) if sweep.misroute_db else 0.0},
            "examples": sweep.examples}


def target(name: str, value: float, op: str, threshold: float) -> dict:
    ok = value >= threshold if op == ">=" else value <= threshold
    margin = value - threshold if op == ">=" else threshold - value
    return {"target": name, "value": round(float(value), 4), "op": op, "threshold": threshold, "pass": bool(ok),
            "margin": round(float(margin), 4)}


def classifier_targets(result: dict) -> list[dict]:
    return [target(f"classifier accuracy, {name}", c["accuracy"], ">=", CLASSIFIER_ACCURACY)
            for name, c in result["classifier"].items()]


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = lambda r: "| " + " | ".join(f"{c:.4g}" if isinstance(c, float) else str(c) for c in r) + " |"  # noqa: E731
    return "\n".join([cells(header), "|" + "---|" * len(header)] + [cells(r) for r in rows])


def metric_row(name: str, m: dict[str, float], base: Optional[dict[str, float]] = None) -> list:
    gain = f"{m['psnr'] - base['psnr']:+.2f}" if base is not None else ""
    return [name, f"{m['psnr']:.2f}", gain, f"{m['ssim']:.4f}", f"{m['l1']:.4g}", f"{m['l2']:.4g}"]


def render(result: dict) -> str:
    """The Markdown report; it starts with the command that produced it."""
    unit, header = result["unit"], ["", "PSNR dB", "vs input", "SSIM", "L1", "L2"]
    parts = [f"```sh\n{result['command']}\n```", f"# Evaluation of the {result['pack']} pack",
             f"Pack version {result['version']} ({result['created']}), {result['precision']} models on "
             f"{result['runtime']}; evaluated {result['date']}. Data: {result['split']}."]
    for role, level in result["levels"].items():
        rows = level["rows"]
        table = [metric_row(n, m, rows[INPUT] if n != INPUT else None) for n, m in rows.items()]
        table += [metric_row(n, m) for n, m in result.get("reference", {}).items()]
        parts += [f"## {role}: {unit} {level['amount']:g}", md_table(header, table)]
    sweep_rows = [[f"{p['amount']:g}"] + [f"{p[r][k]:.4g}" if k != "psnr" else f"{p[r][k]:.2f}"
                                          for k in METRICS for r in (INPUT, ROUTED)]
                  + [", ".join(f"{n} {c}" for n, c in p["routes"].items() if c)] for p in result["sweep"]]
    sweep_header = [unit] + [f"{k.upper()} {r}" for k in METRICS for r in ("input", "ours")] + ["routes taken"]
    parts += [f"## Robustness sweep over {unit} (full route)", md_table(sweep_header, sweep_rows),
              "![metrics against blur](sweep.png)", "![examples: input / prediction / ground truth](examples.png)",
              "## Severity classifier"]
    for name, c in result["classifier"].items():
        parts += [f"{name}: accuracy {c['accuracy']:.4f} over {c['samples']} frames (rows true, columns predicted)",
                  md_table(["true \\ predicted"] + c["classes"], [[n] + r for n, r in zip(c["classes"], c["matrix"])])]
    m = result["misroutes"]
    parts += [f"What a wrong route costs, in the sweep: {m['frames']} of {m['of']} frames took another class's route; "
              f"their PSNR minus that of the true class's route is {m['mean_db_vs_true_route']:+.3f} dB on average "
              f"(worst {m['worst_db_vs_true_route']:+.3f} dB; positive means the classifier's route was in fact better).",
              "![confusion matrices](confusion.png)", "## Targets",
              md_table(["target", "value", "needed", "margin", ""],
                       [[t["target"], t["value"], f"{t['op']} {t['threshold']:g}", t["margin"],
                         "PASS" if t["pass"] else "FAIL"] for t in result["targets"]]),
              "## Notes", "\n".join(f"- {n}" for n in result["notes"])]
    return "\n\n".join(parts) + "\n"


def plot_sweep(result: dict, path: Path) -> None:
    amounts = [p["amount"] for p in result["sweep"]]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, k in zip(axes.flat, METRICS):
        for row in (INPUT, ROUTED):
            ax.plot(amounts, [p[row][k] for p in result["sweep"]], marker="o", label=row)
        ax.set(xlabel=result["unit"], ylabel=k.upper(), title=f"{k.upper()} against {result['unit']}")
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle(f"{result['pack']}: full route ({result['precision']}) vs blurred input, {result['samples']} images")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_examples(result: dict, examples: dict, path: Path) -> None:
    images = sorted({i for i, _ in examples})
    amounts = sorted({a for _, a in examples})
    fig, axes = plt.subplots(3 * len(images), len(amounts), figsize=(1.6 * len(amounts), 1.6 * 3 * len(images)),
                             squeeze=False)
    for r, (i, kind) in enumerate((i, k) for i in images for k in range(3)):
        for c, a in enumerate(amounts):
            ax = axes[r, c]
            ax.imshow(examples[(i, a)][kind], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{result['unit']} {a:g}", fontsize=9)
            if c == 0:
                ax.set_ylabel(("input", "prediction", "ground truth")[kind], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_confusion(result: dict, path: Path) -> None:
    sets = result["classifier"]
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 4), squeeze=False)
    for ax, (name, c) in zip(axes[0], sets.items()):
        m = np.asarray(c["matrix"])
        ax.imshow(m, cmap="Blues")
        for (y, x), v in np.ndenumerate(m):
            ax.text(x, y, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
        ax.set(xticks=range(3), yticks=range(3), xticklabels=c["classes"], yticklabels=c["classes"],
               xlabel="predicted", ylabel="true", title=f"{name}\naccuracy {c['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(result: dict, out: Path) -> None:
    """report.md, report.json and the three figures; the example images stay out of the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    examples = result.pop("examples")
    plot_sweep(result, out / "sweep.png")
    plot_examples(result, examples, out / "examples.png")
    plot_confusion(result, out / "confusion.png")
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(render(result))


def headline(result: dict, out: Path) -> dict:
    """The figures a pack carries in its manifest: per-level rows, the sweep, classifier accuracy, targets."""
    return {"command": result["command"], "date": result["date"], "precision": result["precision"],
            "samples": result["samples"], "report": str(out.relative_to(REPO) if out.is_relative_to(REPO) else out),
            "unit": result["unit"],
            "levels": {role: {"amount": lv["amount"], **lv["rows"]} for role, lv in result["levels"].items()},
            "sweep": {f"{p['amount']:g}": {"input_psnr": p[INPUT]["psnr"], "psnr": p[ROUTED]["psnr"],
                                           "input_ssim": p[INPUT]["ssim"], "ssim": p[ROUTED]["ssim"]}
                      for p in result["sweep"]},
            "classifier_accuracy": {name: c["accuracy"] for name, c in result["classifier"].items()},
            "misroutes": result["misroutes"],
            "targets": {t["target"]: t["pass"] for t in result["targets"]}}


def update_manifest(pack_dir: Path, evaluation: dict) -> None:
    """Replace the manifest's top-level `evaluation` atomically; file entries and checksums stay as they are."""
    manifest = load_manifest(pack_dir).model_copy(update={"evaluation": evaluation})
    AtomicWriter().write(Path(pack_dir) / MANIFEST_NAME, manifest.model_dump_json(indent=2).encode())


def evaluate(pack_name: str, models: Path, precision: str, limit: Optional[int], seed: int, runs: Path,
             command: str) -> dict:
    """Load the pack through the daemon's code and run its protocol; returns the result (with example images)."""
    pack_dir = models / pack_name
    if pack_name == "photo":
        packs = {p: ModelPack.load(pack_dir, p, threads=2) for p in ("int8", "float")}
        result = evaluate_photo(packs, precision, limit, seed, runs)
    else:
        packs = {precision: ModelPack.load(pack_dir, precision, threads=2)}
        result = evaluate_digits(pack_name, packs[precision], limit, seed)
    m = packs[precision].manifest
    return result | {"pack": pack_name, "command": command, "precision": precision, "version": m.version,
                     "created": m.created, "runtime": packs[precision].runtime,
                     "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def main(argv: Optional[list[str]] = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", required=True, choices=PACKS)
    p.add_argument("--limit", type=int, default=None, help="score a seeded random subset of this many images")
    p.add_argument("--precision", default="int8", choices=["int8", "float"], help="models of the full route")
    p.add_argument("--out", type=Path, default=None, help="report folder (default reports/<pack>)")
    p.add_argument("--update-manifest", action="store_true", help="write the headline figures into the manifest")
    p.add_argument("--models", type=Path, default=REPO / "models", help="folder holding the packs")
    p.add_argument("--runs", type=Path, default=REPO / "runs", help="training runs (for the papers' architectures)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = args.out or REPO / "reports" / args.pack
    command = shlex.join(["python", "-m", "tools.evaluate", *argv])
    result = evaluate(args.pack, args.models, args.precision, args.limit, args.seed, args.runs, command)
    write_report(result, out)
    if args.update_manifest:
        update_manifest(args.models / args.pack, headline(result, out.resolve()))
    for t in result["targets"]:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']} (needed {t['op']} {t['threshold']:g})")
    print(out / "report.md")
    return result


if __name__ == "__main__":
    main()
