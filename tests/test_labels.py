"""One truth for a result's label: the bundled samples through the daemon and through `deblur`, and every record
of them (index line, sidecar, files on disk, gallery, counters) telling the same story."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO
from PIL import Image

from deblurd.output.layout import SIDECAR

SAMPLES = REPO / "deblurd" / "samples"
FRAMES = 12


def _gallery_entries(folder: Path) -> list[dict]:
    """The entries the gallery's data scripts hold (what its cards and badges show)."""
    entries = []
    for script in sorted((folder / "gallery" / "data").glob("*.js")):
        body = script.read_text().removeprefix("DEBLURD.add(").rstrip().removesuffix(");")
        entries += json.loads(body)
    return entries


def _gallery_breakdown(folder: Path) -> Counter:
    """The severity totals index.html's summary states ("(2 sharp, 7 semi, 3 heavy)")."""
    text = (folder / "index.html").read_text()
    found = re.search(r"\((\d+) sharp, (\d+) semi, (\d+) heavy\)", text)
    assert found, "the gallery states its totals"
    return Counter(dict(zip(("sharp", "semi", "heavy"), map(int, found.groups()))))


def _check_gallery(folder: Path, labels: Counter, passthrough: dict) -> None:
    shown = _gallery_entries(folder)
    assert Counter(e["s"] for e in shown) == labels
    assert +_gallery_breakdown(folder) == labels
    for e in shown:
        assert (e["r"] is None) == passthrough[e["i"]] == (e["s"] == "sharp"), e


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory, photo_pack_dir) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("labels")
    out = tmp / "out"
    config = tmp / "deblurd.toml"
    config.write_text(f'[camera]\nsource = "replay"\nreplay_path = "{SAMPLES}"\nwidth = 640\nheight = 480\n'
                      f'fps = 30.0\n[models]\nthreads = 2\n[output]\ndir = "{out}"\nmax_per_minute = 0\n'
                      f'min_free_mb = 0\nsave_input = true\n[thermal]\nenabled = false\n'
                      f'[logging]\nprogress_s = 0.2\n')
    done = subprocess.run([sys.executable, "-m", "deblurd", "run", "--config", str(config), "--frames", str(FRAMES)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def test_daemon_records_agree_with_what_the_route_did(daemon_run):
    out, _ = daemon_run
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert len(index) == FRAMES
    by_file = {}
    for entry in index:
        sidecar = json.loads((out / entry["files"][SIDECAR]).read_text())
        assert {k: sidecar[k] for k in entry} == entry, "the sidecar repeats its index line"
        images = {k: (out / v).read_bytes() for k, v in entry["files"].items() if k != SIDECAR}
        if entry["severity"] == "sharp":
            assert entry["passthrough"] is True and set(images) == {"input"}, entry
        else:
            assert entry["passthrough"] is False and set(images) == {"input", "restored"}, entry
            assert images["restored"] != images["input"], f"{entry['id']}: a restoration changes the frame"
        by_file.setdefault(Path(sidecar["camera"]["file"]).name, set()).add(entry["severity"])
    assert by_file["06-sharp.jpg"] == {"sharp"}, "an all-sharp map is stored as the input only, labelled sharp"
    named = {f for e in index for f in e["files"].values()}
    on_disk = {p.relative_to(out).as_posix() for p in out.glob("????-??-??/*")}
    assert on_disk == named, "no file without its result, no result without its files"
    labels = Counter(e["severity"] for e in index)
    _check_gallery(out, labels, {e["id"]: e["passthrough"] for e in index})

    state = json.loads((out / "status.json").read_text())
    assert state["state"] == "stopped" and state["in_flight"] == 0
    assert state["frames_in"] == (state["frames_out"] + sum(state["not_stored"].values())
                                  + sum(state["dropped"].values()) + sum(state["left_at_stop"].values()))
    assert state["frames_out"] == FRAMES
    assert {label: counts["out"] for label, counts in state["routes"].items() if counts["out"]} == labels


def test_daemon_says_where_results_are_how_it_goes_and_where_every_frame_went(daemon_run):
    out, done = daemon_run
    assert f"ready: results in {out}, open {out / 'index.html'}" in done.stderr
    state = json.loads((out / "status.json").read_text())
    stop = [line for line in done.stderr.splitlines() if "stopped (max_frames" in line]
    assert len(stop) == 1 and f"{state['frames_in']} frames in, {FRAMES} stored" in stop[0], done.stderr[-2000:]
    assert re.search(r"\d+ frames in, \d+ stored, .* dropped, \d+ in flight; [\d.]+ fps", done.stderr), \
        "a progress line on a terminal"
    assert "PIL" not in done.stderr and "STREAM" not in done.stderr


def test_daemon_under_systemd_leaves_progress_to_the_journal(tmp_path, photo_pack_dir):
    config = tmp_path / "deblurd.toml"
    config.write_text(f'[camera]\nsource = "replay"\nwidth = 160\nheight = 120\n[output]\ndir = "{tmp_path}/out"\n'
                      f'[thermal]\nenabled = false\n[logging]\nprogress_s = 0.01\njournald = "off"\n')
    done = subprocess.run([sys.executable, "-m", "deblurd", "run", "--config", str(config), "--frames", "4"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "INVOCATION_ID": "x"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ready: results in" in done.stderr and "stopped (max_frames" in done.stderr
    assert " in flight; " not in done.stderr


def _one_bit_png(path: Path) -> Path:
    Image.new("1", (96, 64), 1).save(path)  # flat: nothing shows blur, so it passes through
    return path


def _cmyk_jpeg(path: Path) -> Path:
    Image.open(SAMPLES / "05-heavy.jpg").convert("CMYK").save(path, quality=92)
    return path


def test_deblur_records_agree_with_what_the_route_did(tmp_path, photo_pack_dir):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for sample in SAMPLES.glob("*.jpg"):
        (inputs / sample.name).write_bytes(sample.read_bytes())
    _one_bit_png(inputs / "one-bit.png")
    _cmyk_jpeg(inputs / "print.jpg")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "deblurd", "deblur", str(inputs), "-o", str(out), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    results = {Path(r["input"]).name: r for r in json.loads(done.stdout)["results"]}
    for name, r in results.items():
        assert (r["status"] == "passthrough") == (r["severity"] == "sharp") == (r["restored"] == {}), r
        written = (out / r["output"]).read_bytes()
        if r["status"] == "passthrough":
            assert written == (inputs / name).read_bytes() and r["warnings"] == [], f"{name}: copied as it is"
    assert results["06-sharp.jpg"]["status"] == "passthrough" and results["06-sharp.jpg"]["severity"] == "sharp"
    assert results["one-bit.png"]["status"] == "passthrough" and "8-bit" not in done.stderr
    cmyk = results["print.jpg"]
    assert cmyk["status"] == "restored" and not cmyk["layout_kept"] and "written as RGB" in cmyk["warnings"][0]
    records = [json.loads(line) for line in (out / "deblur.jsonl").read_text().splitlines()]
    assert {Path(r["input"]).name: (r["severity"], r["status"]) for r in records} == \
        {name: (r["severity"], r["status"]) for name, r in results.items()}
    numbered = {i: r["status"] == "passthrough" for i, r in enumerate(records, 1)}
    _check_gallery(out, Counter(r["severity"] for r in records), numbered)


def test_deblur_says_a_converted_layout_is_written_not_kept(tmp_path, photo_pack_dir):
    done = subprocess.run([sys.executable, "-m", "deblurd", "deblur", str(_cmyk_jpeg(tmp_path / "print.jpg")),
                           "-o", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restored (written as 8-bit RGB)" in done.stdout and "kept" not in done.stdout
