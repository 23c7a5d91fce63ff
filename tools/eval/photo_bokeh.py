"""How much of each training or validation photo the shipped blur map already calls blurred, before any synthesis.

The realistic synthesis treats every source photo as sharp, but wallpapers are often shot at wide apertures and
carry real bokeh of their own. Where the map calls a clean photo's area blurred, the "in focus" truth of the
evaluation is itself defocused (restoring it scores as a loss), and training learns to keep that blur.

    python -m tools.eval.photo_bokeh --split validation
"""

from __future__ import annotations

import argparse

from deblurd.config import ModelsConfig
from deblurd.restore.inference import ModelPack, rgb_to_luma
from deblurd.restore.router import Router
from tools.data import sources as data
from tools.eval.realistic import RealisticGrid, fit, own_blur


def blurred_shares(pack: str, split: str) -> list[tuple[str, float, dict[str, float]]]:
    """(photo, share of its area the map restores, class shares) for each photo of the split, most blurred first,
    each framed as the realistic evaluation frames it."""
    router = Router(ModelPack.load(ModelsConfig().dir / pack, "int8", "auto", 2))
    rows = []
    for path in data.photo_files(split):
        photo = fit(data.load_rgb(path), RealisticGrid().frame)
        weight, severity = own_blur(router, rgb_to_luma(photo))
        rows.append((path.name, float(weight.mean()), severity.scores))
    return sorted(rows, key=lambda r: -r[1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", default="photo")
    p.add_argument("--split", default="validation", choices=["train", "validation"])
    args = p.parse_args(argv)
    print(f"| photo ({args.split}) | restored weight | map: sharp / semi / heavy |\n|---|---|---|")
    for name, restored, scores in blurred_shares(args.pack, args.split):
        print(f"| {name} | {restored:.0%} | {scores['sharp']:.2f} / {scores['semi']:.2f} / {scores['heavy']:.2f} |")


if __name__ == "__main__":
    main()
