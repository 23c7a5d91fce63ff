"""An evaluation's report: Markdown and JSON under reports/<pack>/, three figures, and the headline figures a pack
carries in its manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deblurd.output.store import AtomicWriter  # noqa: E402
from deblurd.restore.manifest import PACK_MANIFEST_NAME, load_manifest  # noqa: E402
from tools.eval.sweep import INPUT, METRICS, ROUTED  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = lambda r: "| " + " | ".join(f"{c:.4g}" if isinstance(c, float) else str(c) for c in r) + " |"  # noqa: E731
    return "\n".join([cells(header), "|" + "---|" * len(header)] + [cells(r) for r in rows])


def metric_row(name: str, m: dict[str, float], base: dict[str, float] | None = None) -> list:
    gain = f"{m['psnr'] - base['psnr']:+.2f}" if base is not None else ""
    return [name, f"{m['psnr']:.2f}", gain, f"{m['ssim']:.4f}", f"{m['l1']:.4g}", f"{m['l2']:.4g}"]


def realistic_section(r: dict) -> list[str]:
    """The realistic defocus table: PSNR on the defocused and the in-focus area, and the map's tile accuracy."""
    base = r["rows"]["blurred input"]
    def cell(name: str, m: dict, area: str) -> str:
        if area not in m:
            return "—"
        return f"{m[area]:.2f}" + ("" if name == "blurred input" else f" ({m[area] - base[area]:+.2f})")

    areas = ("defocused", "in focus", "in focus, sharp source")
    rows = [[name] + [cell(name, m, a) for a in areas] for name, m in r["rows"].items()]
    c = r["tile_confusion"]
    worst = r["worst_in_focus_change_db"]
    worst_sharp = r.get("worst_sharp_source_change_db")
    parts = [f"## Realistic defocus: {r['frames']} frames of {r['photos']} validation photos (main table)",
             f"Layered depth, real-lens PSFs and the camera's pipeline (deblurd.optics.defocus), radius up to "
             f"{r['max_radius_px']:g} px; {r['mean_defocused_share']:.0%} of the area defocused on average. PSNR (dB) "
             f"on luminance, change against the input in brackets; worst in-focus change of one frame through the "
             f"full route: {'no in-focus area' if worst is None else f'{worst:+.3f} dB'}. The last column leaves "
             f"out what the map would restore in the clean photo itself (real bokeh of its own, where the truth is "
             f"not sharp: `python -m tools.eval.photo_bokeh`); worst change of one frame there: "
             f"{'none' if worst_sharp is None else f'{worst_sharp:+.3f} dB'}.",
             md_table(["", "defocused area", "in-focus area", "in focus, sharp source"], rows)]
    if c["samples"]:
        parts += [f"Blur map tiles against the true median radius (away from class edges): accuracy "
                  f"{c['accuracy']:.3f} over {c['samples']} tiles (rows true, columns the map).",
                  md_table(["true \\ map"] + c["classes"], [[n] + m for n, m in zip(c["classes"], c["matrix"])])]
    return parts


def render(result: dict) -> str:
    """The Markdown report; it starts with the command that produced it."""
    unit, header = result["unit"], ["", "PSNR dB", "vs input", "SSIM", "L1", "L2"]
    parts = [f"```sh\n{result['command']}\n```", f"# Evaluation of the {result['pack']} pack",
             f"Pack version {result['version']} ({result['created']}), {result['precision']} models on "
             f"{result['runtime']}; evaluated {result['date']}. Data: {result['split']}."]
    if "realistic" in result:
        parts += realistic_section(result["realistic"])
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
              f"(worst {m['worst_db_vs_true_route']:+.3f} dB; positive means the classifier's route was in fact "
              "better).",
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
            **({"realistic": {k: result["realistic"][k] for k in ("frames", "rows", "full_route_gain_db",
                                                                 "worst_in_focus_change_db")}
                | {"tile_accuracy": result["realistic"]["tile_confusion"]["accuracy"]}}
               if "realistic" in result else {}),
            "targets": {t["target"]: t["pass"] for t in result["targets"]}}


def update_manifest(pack_dir: Path, evaluation: dict) -> None:
    """Replace the manifest's top-level `evaluation` atomically; file entries and checksums stay as they are."""
    manifest = load_manifest(pack_dir).model_copy(update={"evaluation": evaluation})
    AtomicWriter().write(Path(pack_dir) / PACK_MANIFEST_NAME, manifest.model_dump_json(indent=2).encode())
