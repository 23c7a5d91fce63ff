"""Evaluate a model pack: a Markdown and a JSON report plus PNG figures under reports/<pack>/.

The protocol follows the pack's blur definition in its manifest: Gaussian packs (mnist, fashion-mnist) the first
seed paper's (tools/eval/digits.py), defocus packs the realistic defocus set as their main table
(tools/eval/realistic.py) and the uniform disk protocol with classical baselines (tools/eval/photo.py). Every model
of the pack runs through deblurd's own Router (the daemon's scaling, tiling and routing).

    python -m tools.eval --pack fashion-mnist --limit 500
    python -m tools.eval --pack photo --update-manifest
    python -m tools.eval --pack photo --limit 1 --quick      # a fast look while iterating
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from pathlib import Path

from deblurd.restore.inference import ModelPack
from deblurd.restore.manifest import load_manifest
from deblurd.restore.packs import PACKS
from deblurd.restore.router import Router
from tools.eval.digits import evaluate_digits
from tools.eval.photo import QUICK_GRID, PhotoGrid, evaluate_photo
from tools.eval.realistic import RealisticGrid, evaluate_realistic
from tools.eval.report import headline, update_manifest, write_report

REPO = Path(__file__).resolve().parents[2]


def evaluate(pack_name: str, models: Path, precision: str, limit: int | None, seed: int, runs: Path,
             command: str, grid: PhotoGrid = PhotoGrid()) -> dict:
    """Load the pack through the daemon's code and run its protocol; returns the result (with example images)."""
    pack_dir = models / pack_name
    if load_manifest(pack_dir).blur.psf == "defocus":
        routers = {p: Router(ModelPack.load(pack_dir, p, threads=2)) for p in ("int8", "float")}
        result = evaluate_photo(routers, precision, limit, seed, runs, grid)
        realistic = evaluate_realistic(routers[precision], limit, seed, RealisticGrid(draws=grid.realistic_draws))
        result |= {"realistic": realistic, "targets": realistic["targets"] + result["targets"],
                   "notes": realistic["notes"] + result["notes"]}
    else:
        routers = {precision: Router(ModelPack.load(pack_dir, precision, threads=2))}
        result = evaluate_digits(routers[precision], limit, seed)
    pack = routers[precision].pack
    return result | {"pack": pack_name, "command": command, "precision": precision, "version": pack.manifest.version,
                     "created": pack.manifest.created, "runtime": pack.runtime,
                     "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", required=True, choices=list(PACKS))
    p.add_argument("--limit", type=int, default=None, help="score a seeded random subset of this many images")
    p.add_argument("--precision", default="int8", choices=["int8", "float"], help="models of the full route")
    p.add_argument("--out", type=Path, default=None, help="report folder (default reports/<pack>)")
    p.add_argument("--update-manifest", action="store_true", help="write the headline figures into the manifest")
    p.add_argument("--models", type=Path, default=REPO / "models", help="folder holding the packs")
    p.add_argument("--runs", type=Path, default=REPO / "runs", help="training runs (for the papers' architectures)")
    p.add_argument("--quick", action="store_true",
                   help="photo packs: three radii, one classifier draw, untuned baselines (a fast look, not a report)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = args.out or REPO / "reports" / args.pack
    command = shlex.join(["python", "-m", "tools.eval", *argv])
    result = evaluate(args.pack, args.models, args.precision, args.limit, args.seed, args.runs, command,
                      QUICK_GRID if args.quick else PhotoGrid())
    write_report(result, out)
    if args.update_manifest:
        update_manifest(args.models / args.pack, headline(result, out.resolve()))
    for t in result["targets"]:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']} (needed {t['op']} {t['threshold']:g})")
    print(out / "report.md")
    return result


if __name__ == "__main__":
    main()
