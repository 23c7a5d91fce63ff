"""The README's copy recipe (deploy/copy-results.sh, a real rsync) against a running daemon that keeps writing and
pruning: every copy's index names only files the copy holds, every image is whole, no temporary file is copied,
the copy's gallery shows exactly the results its index lists, and repeated copies into one folder stay that way;
with --mirror they also drop what the daemon pruned, without it they keep it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import cv2
import pytest
from conftest import REPO, make_result, wait_until
from test_gallery import loaded_entries

from deblurd.config import OutputConfig
from deblurd.output.store import ResultStore

ROUNDS = 8
SCRIPT = REPO / "deploy" / "copy-results.sh"
RESULT_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}/")


def _check_copy(copy: Path) -> list[int]:
    """The ids of a consistent copy (its index, files and gallery agree); fails the test otherwise."""
    hidden = list(copy.rglob(".*"))
    assert not hidden, f"hidden (temporary) files in the copy: {hidden[:3]}"
    entries = [json.loads(line) for line in (copy / "index.jsonl").read_text().splitlines()]
    for entry in entries:
        for rel in entry["files"].values():
            assert (copy / rel).is_file(), f"the copied index names {rel}, which the copy lacks"
    for image in copy.rglob("*.jpg"):
        assert cv2.imread(str(image)) is not None, f"{image} is not a whole image"
    ids = [e["id"] for e in entries]
    shown = sorted(e["i"] for e in loaded_entries(copy / "index.html"))
    assert shown == sorted(ids), f"the gallery shows {len(shown)} results, the index lists {len(ids)}"
    return ids


def orphans(copy: Path) -> list[str]:
    """Result files in the copy that its index does not name (results the daemon pruned since)."""
    named = {rel for line in (copy / "index.jsonl").read_text().splitlines()
             for rel in json.loads(line)["files"].values()}
    return [rel for p in copy.rglob("*") if p.is_file()
            and RESULT_FILE.match(rel := p.relative_to(copy).as_posix()) and rel not in named]


def copy_results(out: Path, dest: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT), *options, f"{out}/", str(dest)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture()
def rsync():
    if subprocess.run(["sh", "-c", "command -v rsync"], capture_output=True).returncode:
        pytest.skip("rsync is not installed (apt-get install rsync)")


def test_copy_recipe_is_consistent_against_a_running_daemon(tmp_path, daemon, rsync):
    out = tmp_path / "out"
    old = ResultStore(OutputConfig(dir=out, min_free_mb=0))
    old.open()
    for seq in range(1, 121):  # yesterday's results: old enough for retention to prune while we copy
        old.save(make_result(seq, when=time.time() - 86400 + seq))
    old.close()
    proc = daemon.start(out, output={"max_results": 100}, camera={"fps": 30.0})
    index = out / "index.jsonl"
    wait_until(lambda: json.loads(index.read_text().splitlines()[0])["id"] > 1, proc, what="the daemon pruning")
    same, mirrored = tmp_path / "copy-again", tmp_path / "copy-mirrored"
    sizes, pruned = [], 0
    for round_ in range(ROUNDS):
        before = index.read_text().splitlines()[0]
        for dest, options in ((tmp_path / f"copy-{round_}", ()), (same, ()), (mirrored, ("--mirror",))):
            done = copy_results(out, dest, *options)
            assert done.returncode == 0, done.stderr
            sizes.append(len(_check_copy(dest)))
        pruned += index.read_text().splitlines()[0] != before
        assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)  # a result pruned during the last copy is mirrored away by the next one
    proc.communicate(timeout=60)
    assert copy_results(out, mirrored, "--mirror").returncode == 0
    kept, dropped = orphans(same), orphans(mirrored)
    print(f"\ncopy recipe: {3 * ROUNDS} copies of {min(sizes)}-{max(sizes)} results while the daemon wrote and "
          f"pruned ({pruned} of {ROUNDS} rounds saw pruning): 0 inconsistent, every gallery matching its index; "
          f"files of pruned results after {ROUNDS} rounds into one folder: {len(kept)} without --mirror, "
          f"{len(dropped)} with it")
    assert pruned > 0
    assert kept and not dropped, "--mirror deletes what the daemon pruned; without it the copy keeps it"


def test_mirror_refuses_a_folder_that_is_not_a_copy_and_help_documents_it(tmp_path, rsync):
    out = tmp_path / "out"
    store = ResultStore(OutputConfig(dir=out, min_free_mb=0))
    store.open()
    store.save(make_result(1))
    store.close()
    home = tmp_path / "home"
    home.mkdir()
    (home / "precious.txt").write_text("mine")
    done = copy_results(out, home, "--mirror")
    assert done.returncode == 64 and "refusing --mirror" in done.stderr
    assert "holds files but no index.jsonl" in done.stderr
    assert (home / "precious.txt").read_text() == "mine" and sorted(p.name for p in home.iterdir()) == ["precious.txt"]
    assert copy_results(out, tmp_path / "new", "--mirror").returncode == 0
    assert _check_copy(tmp_path / "new") == [1]
    shown = subprocess.run(["sh", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--mirror" in shown.stdout and "rsync --delete" in shown.stdout
    assert "examples:" in shown.stdout
    wrong = subprocess.run(["sh", str(SCRIPT), "only-one"], capture_output=True, text=True)
    assert wrong.returncode == 64 and "usage:" in wrong.stderr
