"""The photo pack on realistic defocus: layered scenes with an in-focus plane, real-lens PSFs and the camera after
the lens (deblurd.optics.defocus), scored separately on the defocused and the in-focus area of each frame.

What a defocused Camera Module 3 delivers is what the pack is for, so this is the photo pack's main table: the
full route (blur map, then each region on its route) must gain on the defocused area and lose nothing on the
area in focus. Whole-frame semi and heavy rows show what a per-frame label would have done. The blur map's tiles
are also scored against the true radius under each tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from deblurd.frames import SEVERITY_LABELS, Severity
from deblurd.optics import defocus
from deblurd.optics.blur import BlurDefinition
from deblurd.restore.inference import rgb_to_luma
from deblurd.restore.router import Router
from tools.data import sources as data
from tools.eval.sweep import confusion, sample_indices, target

MAX_RADIUS = 16.0
AREAS = ("defocused", "in focus", "in focus, sharp source")
"""Areas scored: by the synthesis's radius, and the in-focus area less what the map would restore in the clean
photo itself (wallpapers carry real bokeh of their own: there the truth is not sharp; tools.eval.photo_bokeh)."""
"""Largest defocus radius drawn, px at the 640 px working width (f/1.8 backgrounds reach 8-16 px there)."""
EDGE_MARGIN = 0.25
"""Tiles whose true radius lies this close to a class boundary are left out of the tile accuracy."""
DEFOCUSED_GAIN_DB = 2.5
IN_FOCUS_LOSS_DB = 0.05
ROWS = ("blurred input", "ours, full route (blur map)", "ours, semi everywhere", "ours, heavy everywhere")


@dataclass(frozen=True)
class RealisticGrid:
    draws: int = 2
    """Degradations per validation photo."""
    frame: tuple[int, int] = (640, 480)


def own_blur(router: Router, luma: np.ndarray) -> tuple[np.ndarray, Severity]:
    """The route weight the map gives each pixel of a clean photo (0: passed through), and its verdict: the photo's
    own bokeh, since the synthesis treats every source photo as sharp."""
    severity, weights = router.decide(luma)
    weight = np.clip(sum(weights.values()), 0.0, 1.0) if weights else np.zeros(luma.shape, np.float32)
    return weight, severity


def masked_psnr(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR (data range 1) over the masked pixels; None when the mask is empty."""
    if not mask.any():
        return None
    mse = float(np.mean((pred[mask].astype(np.float64) - truth[mask]) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(1.0 / mse)


def fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the frame's aspect and resize (area) to it, as the camera's continuous stream frames it."""
    h, w = rgb.shape[:2]
    aspect = size[0] / size[1]
    cw, ch = min(w, int(h * aspect)), min(h, int(w / aspect))
    y, x = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(rgb[y:y + ch, x:x + cw], size, interpolation=cv2.INTER_AREA)


def tile_truth(radius: np.ndarray, blur_map_record: dict, bands: BlurDefinition,
               scale: float) -> tuple[list[str], list[str]]:
    """(true, predicted) labels of the map's tiles away from class boundaries; truth is the tile's median |radius|
    at the working scale."""
    true, predicted = [], []
    tile = blur_map_record["tile_px"]
    edges = (bands.sharp_max, bands.semi_max)
    legend = blur_map_record["legend"]
    for i, y in enumerate(blur_map_record["starts"]["y"]):
        for j, x in enumerate(blur_map_record["starts"]["x"]):
            window = radius[int(y / scale):int((y + tile) / scale), int(x / scale):int((x + tile) / scale)]
            r = float(np.median(np.abs(window))) * scale
            if min(abs(r - e) for e in edges) < EDGE_MARGIN:
                continue
            true.append(bands.label(r))
            predicted.append(legend[blur_map_record["rows"][i][j]])
    return true, predicted


def evaluate_realistic(router: Router, limit: int | None, seed: int,
                       grid: RealisticGrid = RealisticGrid(), split: str = "validation") -> dict:
    """Main table rows (defocused and in-focus PSNR per row), per-frame worst in-focus change, tile confusion.
    The report uses the validation photos; routing constants are tuned on split="train"."""
    bands = router.pack.manifest.blur
    width = router.pack.manifest.working_width or grid.frame[0]
    scale = width / grid.frame[0]
    files = data.photo_files(split)
    chosen = [files[i] for i in sample_indices(len(files), limit, seed)]
    forced = {row: Router(router.pack, forced=label) for row, label in zip(ROWS[2:], ("semi", "heavy"))}
    scores: dict[str, dict[str, list[float]]] = {row: {area: [] for area in AREAS} for row in ROWS}
    true, predicted, worst_in_focus, worst_sharp_source, defocused_share = [], [], [], [], []
    for k, path in enumerate(tqdm(chosen, desc="realistic frames", unit="photo")):
        photo = fit(data.load_rgb(path), grid.frame).astype(np.float32) / 255
        truth = rgb_to_luma(np.round(photo * 255).astype(np.uint8))
        sharp_source = own_blur(router, truth)[0] == 0
        for d in range(grid.draws):
            rng = np.random.default_rng([seed, k, d])
            sample = defocus.degrade(photo, rng, MAX_RADIUS * grid.frame[0] / width)
            captured = np.round(np.clip(sample.image, 0, 1) * 255).astype(np.uint8)
            in_focus = np.abs(sample.radius) <= bands.sharp_max / scale
            masks = {"defocused": ~in_focus, "in focus": in_focus, AREAS[2]: in_focus & sharp_source}
            defocused_share.append(float(masks["defocused"].mean()))
            severity, routed = router.route(captured)
            outputs = {ROWS[0]: captured, ROWS[1]: routed} | {row: r.route(captured)[1] for row, r in forced.items()}
            for row, out in outputs.items():
                luma = rgb_to_luma(out)
                for area, mask in masks.items():
                    value = masked_psnr(luma, truth, mask)
                    if value is not None:
                        scores[row][area].append(value)
            for area, worst in (("in focus", worst_in_focus), (AREAS[2], worst_sharp_source)):
                base = masked_psnr(rgb_to_luma(captured), truth, masks[area])
                ours = masked_psnr(rgb_to_luma(routed), truth, masks[area])
                if base is not None and ours is not None:
                    worst.append(ours - base)
            t, p = tile_truth(sample.radius, severity.map, bands, scale)
            true += t
            predicted += p
    table = {row: {area: round(float(np.mean(v)), 3) for area, v in areas.items() if v}
             for row, areas in scores.items()}
    gain = {area: table[ROWS[1]].get(area, np.nan) - table[ROWS[0]].get(area, np.nan)
            for area in ("defocused", "in focus")}
    tiles = confusion(true, predicted) if true else {"samples": 0, "accuracy": 0.0}
    return {"frames": len(defocused_share), "photos": len(chosen), "max_radius_px": MAX_RADIUS,
            "mean_defocused_share": round(float(np.mean(defocused_share)), 3), "rows": table,
            "full_route_gain_db": {k: round(float(v), 3) for k, v in gain.items() if np.isfinite(v)},
            "worst_in_focus_change_db": round(float(min(worst_in_focus)), 3) if worst_in_focus else None,
            "worst_sharp_source_change_db": round(float(min(worst_sharp_source)), 3) if worst_sharp_source else None,
            "tile_confusion": tiles,
            "targets": [target("realistic: full-route gain on the defocused area, dB", gain["defocused"], ">=",
                               DEFOCUSED_GAIN_DB),
                        target("realistic: full-route loss on the in-focus area, dB", -gain["in focus"], "<=",
                               IN_FOCUS_LOSS_DB),
                        target("realistic: blur map tile accuracy away from band edges", tiles["accuracy"], ">=",
                               0.95)],
            "notes": [f"Realistic set: {len(chosen)} {split} photos x {grid.draws} draws at "
                      f"{grid.frame[0]}x{grid.frame[1]} of deblurd.optics.defocus.degrade (layered depth with "
                      f"occlusion, lens PSFs with rims, colour and cat's eye, Bayer, noise over gains, ISP, JPEG), "
                      f"radius up to {MAX_RADIUS:g} px at the working width; PSNR on luminance, against the photo "
                      f"that went in, on the area whose true radius is above (defocused) or at most (in focus) "
                      f"{bands.sharp_max:g} px.",
                      "Tile accuracy: each map tile against the median true radius under it, tiles within "
                      f"{EDGE_MARGIN:g} px of a class boundary left out; classes are the pack's bands "
                      f"({', '.join(SEVERITY_LABELS)})."]}
