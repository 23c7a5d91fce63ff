"""The ship gate: a new pack replaces the shipped one only if it loses no headline row and leaves sharp photos alone.

Refused when any headline row (the full route at each level, at each sweep point, on the realistic set's defocused
and in-focus areas) is more than HEADLINE_DB below the shipped pack, or when the new pack's mean change on sharp
photos (sweep at radius 0, realistic in-focus area of sharp sources) is a loss beyond SHARP_LOSS_DB. Both packs must
be scored by the same protocol (tools.train.export evaluates both with the same command before it asks). The table
prints the input, Wiener and Richardson-Lucy given the true PSF (where the protocol scores them), the shipped pack
and the new pack, per row.

    python -m tools.eval.gate --new reports/photo-candidate/report.json --shipped models/photo
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

HEADLINE_DB = 0.1
SHARP_LOSS_DB = 0.05
ROUTED, INPUT = "ours, full route", "blurred input"
REALISTIC_ROUTED = "ours, full route (blur map)"
BASELINES = ("Wiener (true PSF)", "Richardson-Lucy (true PSF)")


@dataclass(frozen=True)
class Row:
    """One headline row of a report: PSNR of the input, the baselines (None where not scored) and the pack."""

    name: str
    input: float
    wiener: float | None
    rl: float | None
    pack: float
    sharp: bool = False
    """A row of sharp photos, where the pack must not lose against the input."""


def rows_of(evaluation: dict) -> dict[str, Row]:
    """Headline rows from a manifest's `evaluation` (tools/eval/report.py headline) keyed by name."""
    out = {}
    unit = evaluation.get("unit", "amount")
    for role, level in evaluation.get("levels", {}).items():
        name = f"{role} ({unit} {level['amount']:g}), full route"
        out[name] = Row(name, level[INPUT]["psnr"], level.get(BASELINES[0], {}).get("psnr"),
                        level.get(BASELINES[1], {}).get("psnr"), level[ROUTED]["psnr"])
    for amount, point in evaluation.get("sweep", {}).items():
        name = f"sweep {unit} {amount}, full route"
        out[name] = Row(name, point["input_psnr"], None, None, point["psnr"], sharp=float(amount) == 0.0)
    realistic = evaluation.get("realistic", {}).get("rows", {})
    for area, value in realistic.get(REALISTIC_ROUTED, {}).items():
        name = f"realistic, {area}"
        out[name] = Row(name, realistic[INPUT][area], None, None, value, sharp=area == "in focus, sharp source")
    return out


def load_evaluation(path: Path) -> dict:
    """A pack folder (its manifest's evaluation), a manifest.json, or a tools.eval report.json."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.exists():
        raise SystemExit(f"{path}: no such report or manifest; run `python -m tools.eval --pack <pack>` first")
    doc = json.loads(path.read_text())
    if path.name == "manifest.json":
        if not doc.get("evaluation"):
            raise SystemExit(f"{path} carries no evaluation; run `python -m tools.eval --pack {doc.get('name')} "
                             f"--update-manifest`")
        return doc["evaluation"]
    from tools.eval.report import headline

    return headline(doc, path.parent.resolve())


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]
    table: str


def judge(new: dict, shipped: dict) -> Verdict:
    """Compare two evaluations row by row; the verdict names every row that fails and by how much."""
    new_rows, old_rows = rows_of(new), rows_of(shipped)
    reasons = [f"{name}: the shipped pack has it, the new report does not" for name in old_rows if name not in new_rows]
    lines = ["| row | input | Wiener (true PSF) | RL (true PSF) | shipped | new | new - shipped | |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    for name, row in new_rows.items():
        old = old_rows.get(name)
        flag = ""
        if old is not None and row.pack < old.pack - HEADLINE_DB:
            flag = "REGRESSION"
            reasons.append(f"{name}: {row.pack:.2f} dB, {old.pack - row.pack:.2f} dB below the shipped pack "
                           f"(allowed {HEADLINE_DB:g})")
        if row.sharp and row.input - row.pack > SHARP_LOSS_DB:
            flag = "SHARP LOSS"
            reasons.append(f"{name}: sharp photos lose {row.input - row.pack:.2f} dB against the input "
                           f"(allowed {SHARP_LOSS_DB:g})")
        delta = "—" if old is None else f"{row.pack - old.pack:+.2f}"
        lines.append(f"| {name} | {row.input:.2f} | {cell(row.wiener)} | {cell(row.rl)} | "
                     f"{cell(None if old is None else old.pack)} | {row.pack:.2f} | {delta} | {flag} |")
    return Verdict(not reasons, reasons, "\n".join(lines))


def report(verdict: Verdict) -> str:
    head = "PASS: the new pack may replace the shipped one" if verdict.passed else \
        "REFUSED: the shipped pack stays\n" + "\n".join(f"- {r}" for r in verdict.reasons)
    return f"{verdict.table}\n\n{head}"


def replace_if_better(candidate: Path, shipped: Path, new: dict, old: dict | None, force: bool = False) -> Verdict:
    """Move `candidate` into `shipped`'s place if the gate passes (or `force`, logged); otherwise leave `shipped`
    untouched. With no shipped evaluation (a first export) there is nothing to protect and the candidate moves in.
    The swap is two renames on one filesystem, so a reader sees the old pack or the new one, never a mixture."""
    verdict = judge(new, old) if old is not None else Verdict(True, [], "(no shipped pack to compare with)")
    print(report(verdict), flush=True)
    if not verdict.passed and not force:
        return verdict
    if not verdict.passed:
        print(f"FORCED: replacing {shipped} despite the refusal above (--force)", flush=True)
    retired = shipped.parent / f".{shipped.name}.retired-{uuid.uuid4().hex[:8]}"
    if shipped.exists():
        shipped.rename(retired)
    candidate.rename(shipped)
    shutil.rmtree(retired, ignore_errors=True)
    return verdict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--new", type=Path, required=True, help="the new pack's report.json, manifest or pack folder")
    p.add_argument("--shipped", type=Path, required=True, help="the shipped pack's folder, manifest or report.json")
    args = p.parse_args(argv)
    verdict = judge(load_evaluation(args.new), load_evaluation(args.shipped))
    print(report(verdict))
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
