"""`make train-all` runs the manifests' own training legs, so the two cannot disagree."""

from __future__ import annotations

import json
import shlex
import subprocess

from conftest import REPO

from tools.train import legs


def test_every_recorded_leg_is_listed_in_each_models_order() -> None:
    listed = legs.legs()
    for pack in legs.PACKS:
        manifest = json.loads((REPO / "models" / pack / "manifest.json").read_text())
        for role, entry in manifest["models"].items():
            commands = entry["training"].get("commands") or [entry["training"]["command"]]
            positions = [listed.index(c) for c in commands]
            assert positions == sorted(positions), f"{pack}/{role} legs out of order"


def test_every_leg_is_a_command_line_its_trainer_accepts() -> None:
    """Each leg parses with the trainer's own parser (an unknown or renamed flag would fail here)."""
    from tools.train import cpu, gpu

    for command in legs.legs():
        words = shlex.split(command)
        assert words[:2] == ["python", "-m"], command
        if words[2] == "tools.train":
            cpu.parse_args(words[3:])
        else:
            assert words[2] == "tools.train.gpu", command
            gpu.parse_args(words[3:])


def test_make_train_all_runs_the_legs() -> None:
    dry = subprocess.run(["make", "-n", "train-all", "FULL="], cwd=REPO, capture_output=True, text=True, check=True)
    assert "-m tools.train.legs --run" in dry.stdout


def test_the_command_lists_them(capsys) -> None:
    assert legs.main(["--pack", "mnist"]) == 0
    assert capsys.readouterr().out.splitlines() == legs.legs(packs=("mnist",))
