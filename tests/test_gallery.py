"""The gallery's pages, through the real store: what they list, in which order, what they link to, what they
survive (a torn index line, pruned results, a full disk), and what a refresh rewrites."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import make_result

from deblurd.config import OutputConfig
from deblurd.output.gallery import (
    DATA_CHUNK,
    DATA_DIR,
    GALLERY_DIR,
    GalleryEntry,
    GalleryUpdater,
    entries_from_output,
    map_grid,
    write_gallery,
)
from deblurd.output.layout import IndexEntry, result_files
from deblurd.output.store import INDEX_NAME, ResultStore
from tools.figures.gallery import record_results

DAY = 86400.0
LINK = re.compile(r'(?:src|href)="([^"]*)"')


def _store(out: Path, **cfg) -> ResultStore:
    store = ResultStore(OutputConfig(dir=out, min_free_mb=0, max_per_minute=0, **cfg))
    store.open()
    return store


def loaded_entries(page: Path) -> list[dict]:
    """The results a page loads, in the order of its data scripts (each script's entries as listed)."""
    entries = []
    for src in LINK.findall(page.read_text()):
        if src.endswith(".js") and f"{DATA_DIR}/" in src:
            text = (page.parent / src).read_text()
            assert text.startswith("DEBLURD.add([") and text.endswith("]);\n")
            entries += json.loads(text[len("DEBLURD.add("):-len(");\n")])
    return entries


def test_the_daemon_pipeline_writes_a_gallery_of_its_results_newest_first(tmp_path, photo_pack):
    out = tmp_path / "out"
    pipe = record_results(out, frames=6, size=(160, 120), stills=1, pack=photo_pack)
    index = json.loads("[" + ",".join((out / INDEX_NAME).read_text().splitlines()) + "]")
    assert len(index) == 7 and pipe.stats.frames_out == 7
    page = out / "index.html"
    shown = loaded_entries(page)
    assert [e["i"] for e in shown] == [e["id"] for e in sorted(index, key=lambda e: (-e["time"], -e["id"]))]
    assert shown[0]["i"] == max(e["id"] for e in index)
    for link in LINK.findall(page.read_text()):
        assert "://" not in link and not link.startswith("/"), f"not a relative link: {link}"
        assert (out / link).is_file(), f"index.html links to missing {link}"
    for entry in shown:
        for href in (entry["a"], entry["r"]):
            assert href is None or (out / href).is_file(), f"{href} is not in the output folder"
        sidecar = json.loads((out / next(e for e in index if e["id"] == entry["i"])["files"]["sidecar"]).read_text())
        assert entry["s"] == sidecar["severity"] and entry["k"] == sidecar["kind"]
        assert entry["m"] == sidecar["blur_map"]["rows"]
        grid = map_grid(sidecar["blur_map"])
        assert (entry.get("x", []), entry.get("y", [])) == (list(grid["map_columns"]), list(grid["map_rows"]))
        assert entry["p"] == [round(sidecar["scores"][s], 3) for s in ("sharp", "semi", "heavy")]
    assert [e["k"] for e in shown].count("still") == 1
    days = {time.strftime("%Y-%m-%d", time.localtime(e["time"])) for e in index}
    assert len(days) == 1, "the run crossed midnight"
    day = days.pop()
    assert [e["i"] for e in loaded_entries(out / GALLERY_DIR / f"{day}.html")] == [e["i"] for e in shown]
    assert 'value="still"' in page.read_text() and f'href="{GALLERY_DIR}/{day}.html"' in page.read_text()


def test_lens_position_temperature_and_both_kinds_reach_the_page(tmp_path):
    out = tmp_path / "out"
    store = _store(out)
    store.save(make_result(1, "heavy", "still"))
    store.save(make_result(2, "sharp"))
    GalleryUpdater(store).refresh()
    newest, oldest = loaded_entries(out / "index.html")
    assert (newest["k"], newest["s"], newest["r"]) == ("continuous", "sharp", None)
    assert (oldest["k"], oldest["s"], oldest["l"], oldest["c"]) == ("still", "heavy", 1.5, 55.0)
    assert oldest["p"] == [0.1, 0.1, 0.8]


def test_a_torn_last_index_line_and_pruned_results_are_tolerated(tmp_path, caplog):
    out = tmp_path / "out"
    store = _store(out)
    entries = [store.save(make_result(seq, "semi")) for seq in range(1, 5)]
    (out / entries[1].files["sidecar"]).unlink()  # a sidecar gone (removed by hand, or a partial copy)
    for rel in entries[2].files.values():  # a result whose files are all gone
        (out / rel).unlink()
    with open(out / INDEX_NAME, "a") as f:
        f.write('{"id": 5, "time": 17')  # a power cut mid-append
    with caplog.at_level(logging.WARNING):
        found = entries_from_output(out)
        path = write_gallery(out, found)
    assert [e.id for e in found] == [1, 2, 3, 4] and "damaged line" in caplog.text
    assert found[1].blur_map == () and found[1].severity == "semi" and found[1].input_href == entries[1].files["input"]
    assert path == out / "index.html"
    assert [e["i"] for e in loaded_entries(path)] == [4, 3, 2, 1]


def test_retention_removes_the_pages_of_days_gone_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    now = time.time()
    store = _store(out, max_results=3)
    updater = GalleryUpdater(store, interval_s=0)
    for seq in range(1, 4):
        store.save(make_result(seq, when=now - 3 * DAY + seq))
    updater.refresh()
    old_day = time.strftime("%Y-%m-%d", time.localtime(now - 3 * DAY))
    assert (out / GALLERY_DIR / f"{old_day}.html").is_file()
    (out / GALLERY_DIR / "notes.txt").write_text("mine")
    for seq in range(4, 7):
        store.save(make_result(seq, when=now + seq))  # max_results = 3: yesterday's three are pruned
    updater.refresh()
    pages = sorted(p.name for p in (out / GALLERY_DIR).iterdir())
    assert pages == [f"{time.strftime('%Y-%m-%d', time.localtime(now + 6))}.html", "data", "gallery.css", "gallery.js",
                     "notes.txt"]
    assert [e["i"] for e in loaded_entries(out / "index.html")] == [6, 5, 4]
    assert all(old_day not in p.name for p in (out / GALLERY_DIR / "data").iterdir())


def test_a_refresh_rewrites_only_what_changed_and_waits_for_its_interval(tmp_path, monkeypatch):
    out = tmp_path / "out"
    store = _store(out)
    now = [0.0]
    updater = GalleryUpdater(store, interval_s=5.0, clock=lambda: now[0])
    start = time.mktime(time.localtime()[:3] + (12, 0, 0, 0, 0, -1))  # noon: all entries on one day
    for seq in range(1, DATA_CHUNK + 3):  # two data chunks on one day
        store.entries.append(IndexEntry(seq, start + seq, "continuous", "semi", False,
                                        result_files(seq, start + seq, ["input"], "jpg")))
    updater.maybe_refresh()
    first = updater.pages.files_written
    assert first == 6  # index.html, the day page, two data scripts, the CSS and the script
    store.entries.append(replace(store.entries[-1], id=DATA_CHUNK + 3, time=start + DATA_CHUNK + 3))
    now[0] = 4.9
    updater.maybe_refresh()
    assert updater.pages.files_written == first, "refreshed before its interval"
    now[0] = 5.0
    writes: list[str] = []
    real = updater.pages.writer.write
    monkeypatch.setattr(updater.pages.writer, "write",
                        lambda path, *a, **k: (writes.append(path.name), real(path, *a, **k)))
    updater.maybe_refresh()
    day = time.strftime("%Y-%m-%d", time.localtime(start))
    assert sorted(writes) == sorted(["index.html", f"{day}.html", f"{day}-0001.js"])
    now[0] = 20.0
    updater.maybe_refresh()
    assert len(writes) == 3, "rewrote pages although nothing changed"


def test_a_full_disk_keeps_the_last_gallery_and_the_daemon_running(tmp_path, tmpfs, caplog):
    out = tmpfs("2m")
    store = _store(out)
    updater = GalleryUpdater(store, interval_s=0)
    store.save(make_result(1))
    updater.refresh()
    before = (out / "index.html").read_bytes()
    store.entries.append(replace(store.entries[0], id=2, time=store.entries[0].time + 1))
    filler = out / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    with caplog.at_level(logging.WARNING):
        updater.refresh()
    assert "cannot update the gallery" in caplog.text and "No space left" in caplog.text
    assert (out / "index.html").read_bytes() == before
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    filler.unlink()
    updater.refresh()
    assert [e["i"] for e in loaded_entries(out / "index.html")] == [2, 1]


def test_write_gallery_for_any_entries_quotes_hrefs_and_names_no_external_url(tmp_path):
    images = tmp_path / "restored"
    entries = [GalleryEntry(1, 1_700_000_000.0, "file", "heavy", "../in/my photo#1.jpg", "my photo#1-restored.jpg",
                            {"sharp": 0.1, "semi": 0.2, "heavy": 0.7}, ("sm", "hh"), title="my photo#1.jpg"),
               GalleryEntry(2, 1_700_000_001.0, "file", "sharp", "../in/b.png", None, title="<b>.png")]
    page = write_gallery(images, entries)
    shown = loaded_entries(page)
    assert [e["i"] for e in shown] == [2, 1]
    assert shown[1]["a"] == "../in/my%20photo%231.jpg" and shown[1]["r"] == "my%20photo%231-restored.jpg"
    assert shown[1]["m"] == ["sm", "hh"] and "x" not in shown[1] and shown[0]["n"] == "<b>.png"
    assert "files (deblurd deblur)" in page.read_text()
    for path in images.rglob("*"):
        if path.is_file():
            assert not re.search(r"https?:|//[a-z]", path.read_text()), f"{path} names an external URL"


def test_map_grid_puts_cell_edges_half_way_through_tile_overlaps():
    overlapping = {"rows": ["smh", "hhh"], "tile_px": 128, "working_size": [320, 256],
                   "starts": {"x": [0, 96, 192], "y": [0, 96]}}
    grid = map_grid(overlapping)
    assert grid["blur_map"] == ("smh", "hhh")
    assert grid["map_columns"] == (0.0, round(112 / 320, 4), round(208 / 320, 4), 1.0)
    assert grid["map_rows"] == (0.0, round(112 / 256, 4), 1.0)
    cells = {"rows": ["ss", "mm"], "tile_px": 32, "working_size": [48, 40], "starts": {"x": [0, 32], "y": [0, 32]}}
    assert map_grid(cells)["map_columns"] == (0.0, round(32 / 48, 4), 1.0)
    even = {"rows": ["ss", "mm"], "tile_px": 32, "working_size": [64, 64], "starts": {"x": [0, 32], "y": [0, 32]}}
    assert map_grid(even)["map_columns"] == () and map_grid(even)["map_rows"] == ()
    assert map_grid(None) == {} and map_grid({"rows": ["s", "ss"]}) == {}


def test_stale_temporary_files_of_a_crash_are_removed(tmp_path):
    out = tmp_path / "out"
    store = _store(out)
    store.save(make_result(1))
    GalleryUpdater(store).refresh()
    stale, fresh = out / GALLERY_DIR / ".x.html.tmp-1", out / GALLERY_DIR / "data" / ".y.js.tmp-2"
    stale.write_text("cut short")
    fresh.write_text("being written")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    store.save(make_result(2))
    GalleryUpdater(store).refresh()
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize("line", ['"just a string"', '{"id": "x"}', '{"no": "id"}'])
def test_index_lines_that_are_not_results_are_skipped(tmp_path, line):
    out = tmp_path / "out"
    store = _store(out)
    store.save(make_result(1))
    with open(out / INDEX_NAME, "a") as f:
        f.write(line + "\n")
    assert [e.id for e in entries_from_output(out)] == [1]


def test_python_m_deblurd_gallery_rewrites_the_gallery_of_a_copy(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "out"
    store = _store(out)
    for seq in (1, 2):
        store.save(make_result(seq))
    (out / "index.html").unlink(missing_ok=True)
    run = [sys.executable, "-m", "deblurd.output.gallery"]
    done = subprocess.run([*run, str(out)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == str(out / "index.html")
    assert [e["i"] for e in loaded_entries(out / "index.html")] == [2, 1]
    missing = subprocess.run([*run, str(tmp_path / "nowhere")], cwd=REPO, capture_output=True, text=True)
    assert missing.returncode == 66 and "holds no index.jsonl" in missing.stderr


def test_a_restarted_daemon_has_its_gallery_current_before_it_says_ready(tmp_path, photo_pack, samples_dir):
    """The first refresh reads every sidecar: it runs before frames flow, not in the store thread's way."""
    import threading

    from conftest import make_config

    from deblurd.capture.camera import ReplaySource
    from deblurd.daemon.pipeline import Pipeline

    out = tmp_path / "out"
    store = _store(out)
    for seq in range(1, 4):
        store.save(make_result(seq))
    (out / "index.html").unlink(missing_ok=True)
    cfg = make_config(tmp_path, output={"dir": str(out), "max_per_minute": 0}, lens={"mode": "fixed"})
    source = ReplaySource(samples_dir, 30.0, (160, 120))
    source.open()
    restarted = ResultStore(cfg.output)
    restarted.open()
    ready = threading.Event()
    seen: list[bool] = []

    class Hooks:
        def ready(self):
            seen.append((out / "index.html").is_file())
            ready.set()

        def __getattr__(self, name):
            return lambda *args: None

    pipe = Pipeline(source, photo_pack, restarted, cfg, hooks=Hooks())
    runner = threading.Thread(target=pipe.run, daemon=True)
    runner.start()
    assert ready.wait(60)
    pipe.stop()
    runner.join(30)
    assert seen == [True] and [e["i"] for e in loaded_entries(out / "index.html")][-3:] == [3, 2, 1]


def test_a_daemon_gallery_offers_both_kinds_and_a_deblur_gallery_its_own():
    from deblurd.output.gallery import offered_kinds

    def entries(*kinds):
        return [GalleryEntry(n, 1.0, kind, "semi", "a.jpg", None) for n, kind in enumerate(kinds, 1)]

    assert offered_kinds(entries("continuous")) == {"continuous", "still"}, "#kind=still has its option"
    assert offered_kinds(entries()) == {"continuous", "still"}
    assert offered_kinds(entries("file")) == {"file"}
