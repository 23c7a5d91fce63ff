"""The output folder's layout: names, the typed index and sidecar records (old folders still read), the one
confinement check, the severity palette the gallery is generated from, and the folder's lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from deblurd.errors import StoreError
from deblurd.frames import SEVERITY_LABELS
from deblurd.output import palette
from deblurd.output.gallery import write_gallery
from deblurd.output.layout import (
    SIDECAR,
    BadRecord,
    IndexEntry,
    Sidecar,
    UnsafePath,
    confined,
    parse_result_name,
    read_index,
    result_files,
)
from deblurd.output.lock import OutputLock, holder
from deblurd.output.map_overlay import COLOURS
from deblurd.restore.blur_map import MAP_LETTERS

OLD_LINE = ('{"id": 12, "time": 1714560000.123, "kind": "still", "severity": "heavy", "passthrough": false, '
            '"files": {"input": "2024-05-01/120000-000012-input.jpg", '
            '"restored": "2024-05-01/120000-000012-restored.jpg", "sidecar": "2024-05-01/120000-000012.json"}}')
"""An index line as the store wrote it before layout.py: it must read back unchanged."""


def test_an_old_index_line_reads_and_writes_back_byte_for_byte():
    entry = IndexEntry.parse(json.loads(OLD_LINE))
    assert (entry.id, entry.kind, entry.severity, entry.passthrough) == (12, "still", "heavy", False)
    assert entry.line() == OLD_LINE
    assert entry.images() == {k: v for k, v in entry.files.items() if k != SIDECAR}


def test_names_the_store_builds_parse_back():
    files = result_files(42, 1714560000.0, ["input", "restored"], "png")
    assert files["input"].endswith("-000042-input.png") and files[SIDECAR].endswith("-000042.json")
    for kind, rel in files.items():
        name = parse_result_name(rel.split("/")[1])
        assert name is not None and name.id == 42 and (name.kind or SIDECAR) == kind
    for other in ("notes.txt", "120000-000042-input.json", "120000-000042.jpg", ".120000-000042.json.tmp-1"):
        assert parse_result_name(other) is None


@pytest.mark.parametrize("files", [
    {"input": "../victim/x.jpg", "sidecar": "2024-05-01/120000-000012.json"},
    {"input": "/etc/passwd", "sidecar": "2024-05-01/120000-000012.json"},
    {"input": "2024-05-01/120000-000013-input.jpg", "sidecar": "2024-05-01/120000-000012.json"},  # another id
    {"input": "2024-05-01/120000-000012-restored.jpg", "sidecar": "2024-05-01/120000-000012.json"},  # wrong kind
    {"input": "gallery/120000-000012-input.jpg", "sidecar": "2024-05-01/120000-000012.json"},  # not a day
    {"input": "2024-05-01/120000-000012-input.jpg"},  # no sidecar
    ["2024-05-01/120000-000012-input.jpg"],
])
def test_records_that_name_anything_but_their_own_files_are_refused(files):
    with pytest.raises(BadRecord):
        IndexEntry.parse({**json.loads(OLD_LINE), "files": files})


@pytest.mark.parametrize("line", ['"text"', '{"id": "12"}', '{"id": true, "time": 1, "files": {}}', "[]",
                                  '{"id": 1, "time": "noon", "files": {}}'])
def test_lines_that_are_not_results_are_bad_records(line):
    with pytest.raises(BadRecord):
        IndexEntry.parse(json.loads(line))


def test_a_sidecar_round_trips_and_tolerates_odd_extras():
    data = {**json.loads(OLD_LINE), "scores": {"heavy": 0.9}, "thermal": "hot", "lens_position": True, "extra": 1}
    sidecar = Sidecar.parse(data)
    assert sidecar.scores == {"heavy": 0.9} and sidecar.thermal == {} and sidecar.lens_position is None
    assert Sidecar.parse(json.loads(sidecar.encode())) == sidecar


def test_confined_refuses_absolute_climbing_and_linked_paths(tmp_path):
    root, outside = tmp_path / "out", tmp_path / "outside"
    (root / "2024-05-01").mkdir(parents=True)
    outside.mkdir()
    (root / "2024-05-02").symlink_to(outside)
    (root / "2024-05-01" / "a.jpg").symlink_to(outside / "a.jpg")
    assert confined(root, "2024-05-01/b.jpg") == root / "2024-05-01" / "b.jpg"
    for bad in ("/etc/passwd", "../outside/a.jpg", "2024-05-01/../../outside", "2024-05-02/a.jpg",
                "2024-05-01/a.jpg", "", None, 3, "a\x00b"):
        with pytest.raises(UnsafePath):
            confined(root, bad)


def test_the_index_is_never_read_through_a_link(tmp_path):
    (tmp_path / "elsewhere.jsonl").write_text(OLD_LINE + "\n")
    (tmp_path / "index.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(OSError):
        read_index(tmp_path)


def test_one_severity_table_drives_the_letters_the_colours_and_the_gallery(tmp_path):
    assert tuple(s.name for s in palette.SEVERITY_STYLES) == SEVERITY_LABELS
    assert "".join(s.letter for s in palette.SEVERITY_STYLES) == MAP_LETTERS
    assert COLOURS == {s.name: s.rgb for s in palette.SEVERITY_STYLES}
    write_gallery(tmp_path, [])
    css = (tmp_path / "gallery" / "gallery.css").read_text()
    page = (tmp_path / "index.html").read_text()
    for s in palette.SEVERITY_STYLES:
        assert f"--{s.name}: {', '.join(map(str, s.rgb))};" in css and f".cell-{s.letter}" in css
        assert f'value="{s.name}"' in page and f'class="cell-{s.letter}"' in page
    assert f"severities: {palette.script_data()}" in page
    assets = Path(palette.__file__).with_name("gallery_assets")
    for name in ("gallery.css", "gallery.js", "page.html"):
        text = (assets / name).read_text()
        assert not any(f'"{s.name}"' in text or f".{s.name}" in text or f"cell-{s.letter}" in text
                       for s in palette.SEVERITY_STYLES), f"{name} retypes the severity table"


def test_the_lock_is_shared_within_a_process_and_refused_to_another(tmp_path):
    first, again = OutputLock(tmp_path), OutputLock(tmp_path)
    first.acquire()
    again.acquire()  # a store reopened in one process shares the lock
    assert holder(tmp_path) == os.getpid()
    script = ("import sys; from deblurd.output.lock import OutputLock, holder; from deblurd.errors import StoreError\n"
              f"print(holder({str(tmp_path)!r}))\n"
              f"try: OutputLock({str(tmp_path)!r}).acquire()\nexcept StoreError as e: print(e); sys.exit(e.exit_code)")
    other = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert other.returncode == 73 and other.stdout.startswith(f"{os.getpid()}\n")
    assert f"in use by another deblurd (pid {os.getpid()})" in other.stdout
    first.release()
    assert holder(tmp_path) == os.getpid(), "held while one user remains"
    again.release()
    assert holder(tmp_path) is None
    free = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert free.returncode == 0 and free.stdout == "None\n"


def test_a_lock_file_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "target").write_text("")
    (tmp_path / ".lock").symlink_to(tmp_path / "target")
    with pytest.raises(StoreError, match="lock file"):
        OutputLock(tmp_path).acquire()
    assert (tmp_path / "target").read_text() == ""
