"""Tune the blur map's routing constants on the training photos (never on the validation photos the report uses).

Each combination of the constants below runs the realistic evaluation (tools.eval.realistic) with the shipped pack
and prints the full route's gain on the defocused and in-focus areas and its worst in-focus frame.

    python -m tools.train.tune_map --min-region 32,48,64
    python -m tools.train.tune_map --margin 0.1,0.3 --min-weight 0.2,0.4
"""

from __future__ import annotations

import argparse
import itertools

from deblurd.config import ModelsConfig
from deblurd.restore import blur_map
from deblurd.restore.inference import ModelPack
from deblurd.restore.router import Router
from tools.eval.realistic import evaluate_realistic


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", default="photo")
    p.add_argument("--split", default="train", choices=["train", "validation"])
    p.add_argument("--limit", type=int, default=15, help="photos (two frames each)")
    p.add_argument("--min-region", type=floats, default=[blur_map.MIN_REGION_PX], help="MIN_REGION_PX values")
    p.add_argument("--margin", type=floats, default=[blur_map.SHARP_MARGIN], help="SHARP_MARGIN values")
    p.add_argument("--min-weight", type=floats, default=[blur_map.MIN_ROUTE_WEIGHT], help="MIN_ROUTE_WEIGHT values")
    args = p.parse_args(argv)
    router = Router(ModelPack.load(ModelsConfig().dir / args.pack, "int8", "auto", 2))
    print("| MIN_REGION_PX | SHARP_MARGIN | MIN_ROUTE_WEIGHT | defocused dB | in focus dB | worst in-focus frame dB |"
          "\n|---|---|---|---|---|---|")
    for region, margin, weight in itertools.product(args.min_region, args.margin, args.min_weight):
        blur_map.MIN_REGION_PX, blur_map.SHARP_MARGIN, blur_map.MIN_ROUTE_WEIGHT = int(region), margin, weight
        r = evaluate_realistic(router, args.limit, 0, split=args.split)
        gain = r["full_route_gain_db"]
        print(f"| {int(region)} | {margin:g} | {weight:g} | {gain['defocused']:+.3f} | {gain['in focus']:+.3f} | "
              f"{r['worst_in_focus_change_db']:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
