"""Every shipped model's training legs, read from the pack manifests: the one record of how a pack was trained.

`make train-all` runs `python -m tools.train.legs --run`, so the Makefile and the manifests' `training.commands`
cannot disagree. Legs run in each model's own order (a leg continues from its model's last checkpoint, and
`--init-from` names only that model's earlier runs); tools.train and tools.train.gpu resume a leg that a stop
cut short, so a rerun continues where the last one ended. Where a leg says `--init-from models/photo`, it
started from the float weights that pack held then (photo 1.0), which the later legs replaced.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from tools import REPO

PACKS = ("photo", "fashion-mnist", "mnist")
"""The shipped packs, in the order `make train-all` trains them."""


def legs(models_dir: Path = REPO / "models", packs: tuple[str, ...] = PACKS) -> list[str]:
    """Every training command of every model of the packs, in each model's order."""
    found = []
    for pack in packs:
        manifest = json.loads((models_dir / pack / "manifest.json").read_text(encoding="utf-8"))
        for role, entry in manifest["models"].items():
            training = entry["training"]
            commands = training.get("commands") or [training["command"]]
            if not commands:
                raise ValueError(f"{pack}/{role}: the manifest records no training command")
            found += commands
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.train.legs", description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run every leg in turn (stops at the first failure)")
    parser.add_argument("--pack", action="append", choices=PACKS, help="only this pack (repeatable)")
    args = parser.parse_args(argv)
    for command in legs(packs=tuple(args.pack or PACKS)):
        print(command, flush=True)
        if args.run:
            words = shlex.split(command)
            if words[:2] != ["python", "-m"]:
                raise SystemExit(f"not a python -m leg: {command}")
            env_words = ["env", "KERAS_BACKEND=jax"] if words[2] == "tools.train.gpu" else []
            done = subprocess.run([*env_words, sys.executable, *words[1:]], cwd=REPO)
            if done.returncode:
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
