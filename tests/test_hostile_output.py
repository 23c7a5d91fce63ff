"""The output folder as a trust boundary: links, crafted sidecars and index lines, two daemons, a folder removed
mid-run. Each case checks that nothing outside the folder was touched (a victim folder's files and mtimes)."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, make_result, wait_until

from deblurd.config import OutputConfig
from deblurd.output.gallery import GalleryUpdater
from deblurd.output.layout import INDEX_NAME, LOCK_NAME, SPOOL_DIR, day_name
from deblurd.output.lock import holder
from deblurd.output.store import ResultStore, StoreError

OLD = time.time() - 30 * 86400


def _victim(tmp_path: Path) -> tuple[Path, dict[str, tuple[bytes, int]]]:
    """A folder outside the output holding files a hostile folder points at, and a snapshot of them."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.jpg").write_bytes(b"precious")
    (victim / "120000-000005-input.jpg").write_bytes(b"looks like a cut-short result")
    (victim / "index.jsonl").write_bytes(b'{"not": "ours"}\ntorn')
    (victim / "notes.txt").write_bytes(b"notes")
    return victim, _snapshot(victim)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _store(out: Path, **cfg) -> ResultStore:
    store = ResultStore(OutputConfig(dir=out, min_free_mb=0, max_per_minute=0, **cfg), clock=time.time)
    store.open()
    return store


def test_a_day_folder_that_is_a_link_is_left_alone(tmp_path, caplog):
    victim, before = _victim(tmp_path)
    out = tmp_path / "out"
    _store(out).save(make_result(1))
    (out / "2001-01-01").symlink_to(victim)
    with caplog.at_level(logging.WARNING):
        store = _store(out)
    assert _snapshot(victim) == before
    assert "day folder 2001-01-01 left alone" in caplog.text and "symbolic link" in caplog.text
    assert [e.id for e in store.entries] == [1]


def test_todays_day_folder_as_a_link_stops_the_store_before_writing(tmp_path):
    victim, before = _victim(tmp_path)
    out = tmp_path / "out"
    store = _store(out)
    (out / day_name(time.time())).symlink_to(victim)
    with pytest.raises(StoreError, match="not a plain folder") as err:
        store.save(make_result(1))
    assert err.value.exit_code == 73 and _snapshot(victim) == before


@pytest.mark.parametrize("crafted", ["../victim/precious.jpg", "{victim}/precious.jpg",
                                     "2001-01-01/../../victim/precious.jpg"])
def test_crafted_sidecars_and_index_lines_never_reach_outside(tmp_path, caplog, crafted):
    victim, before = _victim(tmp_path)
    out = tmp_path / "out"
    store = _store(out)
    store.save(make_result(1, when=OLD))
    day = out / day_name(OLD)
    rel = crafted.format(victim=victim)
    hostile = {"id": 7, "time": OLD, "kind": "continuous", "severity": "semi", "passthrough": False,
               "files": {"input": rel, "sidecar": f"{day.name}/120000-000007.json"}}
    (day / "120000-000007.json").write_text(json.dumps(hostile))  # recovery would index it again
    with open(out / INDEX_NAME, "a") as f:
        f.write(json.dumps({**hostile, "id": 8}) + "\n")  # and retention would delete what it names
    with caplog.at_level(logging.WARNING):
        store = _store(out, max_results=1)
        for seq in range(2, 6):
            store.save(make_result(seq, when=OLD + seq))
        GalleryUpdater(store).refresh()
    assert _snapshot(victim) == before and victim.is_dir()
    assert "left alone" in caplog.text
    assert all(e.id not in (7, 8) for e in store.entries)
    assert (day / "120000-000007.json").exists(), "a refused sidecar is left where it is"


def test_a_sidecar_naming_another_results_files_is_refused(tmp_path):
    out = tmp_path / "out"
    store = _store(out)
    first = store.save(make_result(1))
    day = out / first.files["sidecar"].split("/")[0]
    (day / "120000-000009.json").write_text(json.dumps(
        {"id": 9, "time": time.time(), "files": {"input": first.files["input"],
                                                  "sidecar": f"{day.name}/120000-000009.json"}}))
    store = _store(out)
    assert [e.id for e in store.entries] == [1], "a crafted sidecar cannot adopt another result's files"


def test_a_linked_file_inside_a_day_folder_is_not_followed(tmp_path):
    victim, before = _victim(tmp_path)
    out = tmp_path / "out"
    store = _store(out, max_results=1)
    entry = store.save(make_result(1, when=OLD))
    (out / entry.files["input"]).unlink()
    (out / entry.files["input"]).symlink_to(victim / "precious.jpg")
    for seq in range(2, 5):
        store.save(make_result(seq, when=OLD + seq))
    assert _snapshot(victim) == before


@pytest.mark.parametrize("name", [INDEX_NAME, SPOOL_DIR])
def test_the_index_or_the_spool_as_a_link_is_refused_at_start(tmp_path, name):
    victim, before = _victim(tmp_path)
    out = tmp_path / "out"
    _store(out).save(make_result(1))
    if name == INDEX_NAME:
        (out / name).unlink()
    (out / name).symlink_to(victim / "index.jsonl" if name == INDEX_NAME else victim)
    with pytest.raises(StoreError, match="symbolic link") as err:
        _store(out)
    assert err.value.exit_code == 73 and _snapshot(victim) == before


def test_the_gallery_folder_as_a_link_is_not_written_through(tmp_path, caplog):
    victim, before = _victim(tmp_path)
    out = tmp_path / "out"
    store = _store(out)
    store.save(make_result(1))
    (out / "gallery").symlink_to(victim)
    with caplog.at_level(logging.WARNING):
        GalleryUpdater(store).refresh()
    assert _snapshot(victim) == before and "cannot update the gallery" in caplog.text


def test_a_second_daemon_on_one_folder_exits_73_naming_the_first(tmp_path, daemon):
    out = tmp_path / "out"
    first = daemon.start(out)
    wait_until(lambda: (out / INDEX_NAME).is_file() and (out / INDEX_NAME).read_text().count("\n") >= 2, first)
    assert holder(out) == first.pid
    second = daemon.start(out)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 73, stderr
    assert f"in use by another deblurd (pid {first.pid})" in stderr and "Traceback" not in stderr
    status = subprocess.run([sys.executable, "-m", "deblurd", "status", "--output", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert f"held by pid {first.pid}" in status.stdout
    ids = [json.loads(line)["id"] for line in (out / INDEX_NAME).read_text().splitlines()]
    assert len(ids) == len(set(ids)), "ids repeat"
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)
    assert first.returncode == 0 and holder(out) is None
    assert (out / LOCK_NAME).is_file()
    status = subprocess.run([sys.executable, "-m", "deblurd", "status", "--output", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert "lock" in status.stdout and "free" in status.stdout


def test_the_output_folder_removed_mid_run_exits_73_with_one_line(tmp_path, daemon):
    out = tmp_path / "out"
    proc = daemon.start(out)
    wait_until(lambda: (out / INDEX_NAME).is_file() and (out / INDEX_NAME).read_text().count("\n") >= 2, proc)
    shutil.rmtree(out)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 73, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(f"deblurd: cannot write results to {out}")
