"""The real-lens loop on the simulated Camera Module 3: calibration accuracy against the sim's true blur, and the
fine-tuned pack's held-out evaluation, written to reports/lens/.

    python -m tools.eval.lens_report --seeds 7,8,9                          # calibration only (minutes)
    python -m tools.eval.lens_report --seeds 7,8,9 --finetune-steps 1200    # and fine-tuning (CPU: ~20 min)

For each seed (one simulated lens: its own radius scale, field curvature, rim, softening, colour and vignetting,
with sensor noise and the ISP on), `deblurd collect` takes stills of a plane at 2 m at LensPositions giving 0.5 to 10
dioptres of defocus, `deblurd calibrate` fits the profile, and the profile's radius at each LensPosition (frame
centre and corner) is compared with the radius the sim rendered. With --finetune-steps, the first lens also
collects video-mode pairs (640x480) of 50 training-photo scenes and 15 validation-photo scenes at four levels,
and `tools.train.finetune` fine-tunes the photo pack on the first set and evaluates it on the second.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from deblurd.atomic import AtomicWriter
from deblurd.capture.sim_camera import SimCamera
from deblurd.commands.calibrate import calibrate
from deblurd.commands.collect import CollectPlan, PairCollector
from deblurd.optics.lens_profile import SENSOR_WIDTH_PX

REPO = Path(__file__).resolve().parents[2]
SUBJECT = 0.5
POSITIONS = (0.0, 1.5, 2.5, 3.5, 5.5, 8.0, 10.5)
"""With the subject at 0.5 dioptres: defocus -0.5 (in front) and 1 to 10 dioptres behind."""
TARGET = 0.10
FINETUNE_POSITIONS = (3.0, 4.5, 8.0, 13.0)
"""Defocus 2.5 and 4 dioptres (semi at 640 px) and 7.5 and 12.5 (heavy) for the fine-tuning pairs."""
FINETUNE_SCENES = {"train": 50, "validation": 15}
CORNER = (2 / 3, 2 / 3)
"""The centre of the frame's corner region (the farthest field point calibration measures)."""


def calibration_accuracy(seed: int, scene: Path | None, scenes: int, still_width: int, work: Path) -> dict:
    """Collect and calibrate one simulated lens; the profile's radius against the truth per LensPosition."""
    camera = SimCamera(scene=scene, subject_dioptres=SUBJECT, seed=seed, still_width=still_width)
    camera.open()
    pairs = work / f"pairs-{seed}"
    PairCollector(camera, CollectPlan(list(POSITIONS), scenes, "auto", 0.0, 0.0), pairs, sleep=lambda s: None).run()
    profile = calibrate(pairs)
    rows = []
    for position in POSITIONS:
        row = {"lens_position": position, "defocus_dioptres": position - SUBJECT}
        for where, field in (("centre", (0.0, 0.0)), ("corner", CORNER)):
            truth = camera.true_radius(position, SENSOR_WIDTH_PX, field)
            estimate = profile.radius_px(position - SUBJECT, SENSOR_WIDTH_PX, field)
            row[f"{where}_true_px"] = round(truth, 3)
            row[f"{where}_estimated_px"] = round(estimate, 3)
            row[f"{where}_error"] = round((estimate - truth) / truth, 4) if truth else 0.0
        rows.append(row)
    worst = max(abs(r[f"{w}_error"]) for r in rows for w in ("centre", "corner"))
    lens = camera.lens
    return {"seed": seed, "scenes": scenes, "still_width": still_width,
            "true_lens": {"radius_scale": round(lens.radius_scale, 4), "field_gain": round(lens.field_gain, 4),
                          "rim": round(lens.rim, 3), "soften_px": round(lens.soften_px, 3),
                          "chroma": [round(c, 4) for c in lens.chroma], "vignetting": round(lens.vignetting, 3)},
            "profile": {"radius_per_dioptre": round(profile.radius_per_dioptre, 4),
                        "field_gain": round(profile.field_gain, 4), "rim": round(profile.rim, 3),
                        "soften_px": round(profile.soften_px, 3), "chroma": list(profile.chroma),
                        "fit": profile.fit.model_dump()},
            "rows": rows, "worst_error": worst, "within_target": worst <= TARGET}


def photo_folder(split: str, folder: Path) -> Path:
    """A folder linking the photo data set's photos of a split (`make data`): full-size, textured scenes."""
    from tools.data import sources as data

    folder.mkdir(parents=True)
    for i, path in enumerate(data.photo_files(split)):
        (folder / f"{i:03d}-{path.name}").symlink_to(path)
    return folder


def finetune_experiment(seed: int, steps: int, work: Path) -> dict:
    """Collect training and held-out pairs with one simulated lens, fine-tune the photo pack; its manifest."""
    from tools.train import finetune

    folders = {}
    for split, count in FINETUNE_SCENES.items():
        camera = SimCamera((640, 480), fps=1000.0, scene=photo_folder(split, work / f"photos-{split}"),
                           subject_dioptres=SUBJECT, seed=seed)
        camera.open()
        folders[split] = work / f"lens-pairs-{split}"
        plan = CollectPlan(list(FINETUNE_POSITIONS), count, "auto", 0.0, 0.0, "video")
        PairCollector(camera, plan, folders[split], sleep=lambda s: None).run()
    out = work / f"photo-sim-cm3-{seed}"
    finetune.finetune(finetune.parse_args(["--pairs", str(folders["train"]), "--held-out",
                                           str(folders["validation"]), "--steps", str(steps), "--out", str(out)]))
    return json.loads((out / "manifest.json").read_text())


def markdown(results: list[dict], scene: str, finetuned: dict | None, command: str) -> str:
    lines = ["# The real-lens loop on the simulated Camera Module 3", "", f"Written by `{command}`.", "",
             "## Calibration: estimated blur radius against the sim's true one", "",
             f"Scenes: {scene}. Stills at {results[0]['still_width']} px wide (a quarter of the sensor's 4608; "
             f"radii below are in full-resolution pixels), a plane at {1 / SUBJECT:g} m, sensor noise, ISP and the "
             f"lens's imperfections on. Target: within {TARGET:.0%} from 0.5 to 10 dioptres of defocus.", ""]
    for r in results:
        t, p = r["true_lens"], r["profile"]
        lines += [f"### Lens seed {r['seed']} ({r['scenes']} scenes): worst error {r['worst_error']:.1%} "
                  f"({'within' if r['within_target'] else 'OUTSIDE'} the target)", "",
                  f"- true: radius scale {t['radius_scale']} of the thin lens, corners {t['field_gain']:+.1%}, "
                  f"rim {t['rim']}, softening {t['soften_px']} px, chroma {t['chroma']}, vignetting {t['vignetting']}",
                  f"- fitted: {p['radius_per_dioptre']} px/dioptre, corners {p['field_gain']:+.1%}, rim {p['rim']}, "
                  f"softening {p['soften_px']} px, chroma {p['chroma']}; fit R^2 {p['fit']['r2']:.4f}, median "
                  f"error {p['fit']['median_relative_error']:.1%}", "",
                  "| LensPosition | defocus (D) | centre true px | centre estimated px | error | corner true px | "
                  "corner estimated px | error |", "|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['lens_position']:g} | {row['defocus_dioptres']:g} | {row['centre_true_px']:.2f} | "
                         f"{row['centre_estimated_px']:.2f} | {row['centre_error']:+.1%} | {row['corner_true_px']:.2f} "
                         f"| {row['corner_estimated_px']:.2f} | {row['corner_error']:+.1%} |")
        lines.append("")
    if finetuned:
        ev = finetuned["evaluation"]["lens_pairs"]
        keys = [k for k in ev["rows"][0] if k not in ("defocus_dioptres", "radius_px", "expected_class", "pairs")]
        lines += ["## Fine-tuning on the simulated lens's pairs", "",
                  f"Lens seed {results[0]['seed']}, video-mode pairs at 640x480 of a plane at {1 / SUBJECT:g} m, "
                  f"LensPositions {', '.join(f'{p:g}' for p in FINETUNE_POSITIONS)}: "
                  f"{FINETUNE_SCENES['train']} scenes of the training photos and {FINETUNE_SCENES['validation']} "
                  f"of the validation photos, so {FINETUNE_SCENES['train']} training pairs per level. "
                  f"Pack `{finetuned['name']}` ({finetuned['data']['lens']['training_pairs']} training pairs, "
                  f"{ev['held_out_pairs']} held-out pairs from scenes never trained on), made by `{ev['command']}` "
                  f"(folders in a temporary directory; the pack is not kept); {ev['unit']}. 'blur map' is the "
                  f"daemon's own route; 'map + profile' is that map steered by the blur the profile expects (the "
                  f"daemon with lens.subject_dioptres set); 'lens route' sends the frame to the generator of the "
                  f"class the lens profile expects.", "",
                  "| defocus (D) | radius px @640 | class | pairs | " + " | ".join(keys) + " |",
                  "|---" * (4 + len(keys)) + "|"]
        for row in ev["rows"]:
            lines.append(f"| {row['defocus_dioptres']:g} | {row['radius_px']} | {row['expected_class']} | "
                         f"{row['pairs']} | " + " | ".join(f"{row[k]:.2f}" for k in keys) + " |")
        steps = {role: finetuned["models"][role]["training"] for role in ("semi", "heavy")}
        lines += ["", "Training: " + "; ".join(f"{role} {t['steps_done']} steps of {t['batch']} in {t['seconds']} s "
                                                f"({t['machine']})" for role, t in steps.items()), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="7", help="simulated lenses, comma-separated seeds")
    p.add_argument("--scene", type=Path, help="photo folder the sim looks at (default: the data set's validation "
                                              "photos, `make data`)")
    p.add_argument("--scenes", type=int, default=3, help="scenes per lens")
    p.add_argument("--still-width", type=int, default=1152)
    p.add_argument("--finetune-steps", type=int, default=0, help="also fine-tune to the first lens (steps per "
                                                                  "generator; 0 = calibration only)")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "lens")
    args = p.parse_args(argv)
    command = "python -m tools.eval.lens_report " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    with tempfile.TemporaryDirectory() as work:
        scene = args.scene or photo_folder("validation", Path(work) / "scenes")
        seeds = [int(s) for s in args.seeds.split(",")]
        results = [calibration_accuracy(seed, scene, args.scenes, args.still_width, Path(work)) for seed in seeds]
        finetuned = finetune_experiment(seeds[0], args.finetune_steps, Path(work)) if args.finetune_steps else None
    args.out.mkdir(parents=True, exist_ok=True)
    writer = AtomicWriter()
    writer.write(args.out / "lens.json", json.dumps({"command": command, "calibration": results,
                                                     "finetuned": finetuned and finetuned["evaluation"]},
                                                    indent=1).encode())
    scene = str(args.scene) if args.scene else "the photo data set's validation photos (tools/data/sources.py)"
    writer.write(args.out / "README.md", markdown(results, scene, finetuned, command).encode())
    print((args.out / "README.md").read_text())


if __name__ == "__main__":
    main()
