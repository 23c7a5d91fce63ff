"""Hostile input: decompression bombs (PNG, JPEG, TIFF: small on disk, 400 MP in the header) and names with HTML,
newlines and escapes, through a running daemon (replay, the stills spool) and `deblurd deblur`, as real
subprocesses. Each is refused or survived: the daemon goes on, the batch finishes with its gallery, each bomb is
named once, the peak RSS stays far below what one decoded bomb takes (1.2 GB), and nothing outside the folders
the command was given is touched."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bombs import BOMBS, jpeg_bomb, png_bomb
from conftest import REPO

from deblurd.capture.camera import SAMPLES_DIR
from deblurd.daemon.spool import REJECTED_DIR
from deblurd.output.layout import SPOOL_DIR

PEAK_RSS_MB = 700
"""Far below one decoded bomb (400 MP as RGB: 1.2 GB), above the daemon's own working set."""
HTML_NAME = "<img src=x onerror=alert(1)>.jpg"
FORGED_LINE = "2026-01-01 00:00:00,000 ERROR deblurd: forged"
NEWLINE_NAME = f"evil\n{FORGED_LINE}.jpg"
ESCAPE_NAME = "term\x1b[31mred\x1b]0;title\x07.png"


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, str]]:
    """Every file under root (but skip) with its mode and content hash: what 'untouched' is checked against."""
    found = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents) or not path.is_file():
            continue
        found[str(path.relative_to(root))] = (path.stat().st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def assert_untouched(root: Path, before: dict[str, tuple[int, str]], written: Path) -> None:
    """Every file under root outside the folder the command was given (and the test's logs) is as it was."""
    after = {k: v for k, v in snapshot(root, skip=written).items() if not k.startswith("logs/")}
    assert after == before, "a file outside the output folder was touched"


def vm_hwm_mb(pid: int) -> float:
    """The process's own peak RSS so far (VmHWM), 0 once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)


def run_measured(command: list[str], logs: Path, timeout: float = 240) -> tuple[int, str, str, float]:
    """Run a command; its exit code, stdout, stderr and its own peak RSS in MB: VmHWM from /proc, read until it
    exits. (getrusage and wait4 report at least the RSS of this test process at the fork, which a child inherits
    as its max RSS across exec, so they bound it only from above, by however large this test process has grown
    in a whole run: not checked.)"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    logs.mkdir(exist_ok=True)
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err)
    deadline = time.monotonic() + timeout
    peak = 0.0
    while True:
        peak = max(peak, vm_hwm_mb(child.pid))
        pid, status, _ = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            child.kill()
            os.wait4(child.pid, 0)
            pytest.fail(f"{command} still running after {timeout} s")
        time.sleep(0.05)
    child.returncode = os.waitstatus_to_exitcode(status)
    stdout = (logs / "stdout").read_text(errors="replace")
    stderr = (logs / "stderr").read_text(errors="replace")
    return child.returncode, stdout, stderr, peak


def replay_folder(root: Path) -> Path:
    """Two bundled samples, a bomb of each format, a sample under an HTML name, and a damaged file whose name
    holds a newline and a forged log line (so the daemon logs that name)."""
    folder = root / "replay"
    folder.mkdir()
    for name in ("01-sharp.jpg", "03-heavy.jpg"):
        shutil.copy(SAMPLES_DIR / name, folder / name)
    for suffix, make in BOMBS.items():
        make(folder / f"bomb.{suffix}")
    shutil.copy(SAMPLES_DIR / "02-semi.jpg", folder / HTML_NAME)
    (folder / NEWLINE_NAME).write_bytes(b"not an image")
    return folder


def daemon_config(root: Path, replay: Path, frames_out: Path) -> Path:
    config = root / "deblurd.toml"
    config.write_text(f"""
[camera]
source = "replay"
replay_path = "{replay}"
fps = 30.0
width = 160
height = 120

[lens]
mode = "fixed"

[output]
dir = "{frames_out}"
max_per_minute = 0

[thermal]
enabled = false
""")
    return config


def assert_no_forged_lines(text: str) -> None:
    assert not any(line.startswith(FORGED_LINE) for line in text.splitlines()), "a file name forged a log line"
    assert "\x1b" not in text and "\x07" not in text, "a file name reached the terminal with its control characters"


def test_a_daemon_replaying_bombs_goes_on_names_each_once_and_stays_small(tmp_path, photo_pack_dir):
    replay = replay_folder(tmp_path)
    out = tmp_path / "out"
    config = daemon_config(tmp_path, replay, out)
    before = snapshot(tmp_path, skip=out)
    frames = 24  # the folder (5 readable images) loops several times
    code, _, log, peak_mb = run_measured([sys.executable, "-m", "deblurd", "run", "--config", str(config),
                                          "--frames", str(frames)], tmp_path / "logs")
    print(f"replay with a PNG, a JPEG and a TIFF bomb (400 MP each), {frames} frames: peak RSS {peak_mb:.0f} MB")
    assert code == 0, log[-3000:]
    for suffix in BOMBS:
        assert log.count(f"bomb.{suffix}: 400.0 MP, over the limit of 24 MP") == 1, (suffix, log[-3000:])
    assert log.count("forged.jpg: missing, unreadable or not an image") == 1, "named once, not on every loop"
    assert "evil\\n2026-01-01" in log, "the newline is shown escaped"
    assert_no_forged_lines(log)
    assert "Traceback" not in log and "DecompressionBomb" not in log
    assert peak_mb < PEAK_RSS_MB
    stored = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert len(stored) == frames, "every frame the bombs did not stop was stored"
    sources = {json.loads((out / e["files"]["sidecar"]).read_text())["camera"].get("file") for e in stored}
    assert HTML_NAME in sources, "the HTML-named image was replayed like any other"
    gallery = "".join(p.read_text(errors="replace") for p in [out / "index.html", *out.glob("gallery/*.html")])
    assert "<img src=x" not in gallery, "a name never becomes markup in the gallery"
    assert_untouched(tmp_path, before, out)


def test_bombs_left_in_the_spool_are_rejected_once_and_the_daemon_starts(tmp_path, photo_pack_dir):
    out = tmp_path / "out"
    spool = out / SPOOL_DIR
    spool.mkdir(parents=True)
    bombs = [jpeg_bomb(spool / "1700000000.000000-00000001.jpg"), png_bomb(spool / "1700000001.000000-00000002.jpg")]
    for seq, bomb in enumerate(bombs, 1):
        bomb.with_suffix(".json").write_text(json.dumps({"seq": seq, "captured_at": 1.7e9 + seq, "metadata": {}}))
    config = daemon_config(tmp_path, SAMPLES_DIR, out)
    before = snapshot(tmp_path, skip=out)
    command = [sys.executable, "-m", "deblurd", "run", "--config", str(config), "--frames", "3"]
    code, _, log, peak_mb = run_measured(command, tmp_path / "logs")
    print(f"two bombs in the stills spool at start: peak RSS {peak_mb:.0f} MB")
    assert code == 0 and peak_mb < PEAK_RSS_MB, log[-3000:]
    rejected = spool / REJECTED_DIR
    for bomb in bombs:
        assert not bomb.exists() and (rejected / bomb.name).is_file()
        assert (rejected / bomb.name).with_suffix(".json").is_file()
        assert "over the limit of 24 MP" in (rejected / f"{bomb.stem}.reason.txt").read_text()
        assert log.count(f"spooled still {bomb.name} cannot be restored") == 1
    code, _, again, _ = run_measured(command, tmp_path / "logs")
    assert code == 0 and "cannot be restored" not in again, "a rejected still is not read at the next start"
    assert_untouched(tmp_path, before, out)


def test_deblur_refuses_bombs_and_restores_the_rest_of_the_batch_with_its_gallery(tmp_path, photo_pack_dir):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SAMPLES_DIR / "03-heavy.jpg", inputs / "03-heavy.jpg")
    shutil.copy(SAMPLES_DIR / "01-sharp.jpg", inputs / HTML_NAME)
    shutil.copy(SAMPLES_DIR / "05-heavy.jpg", inputs / "new\nline.jpg")
    (inputs / ESCAPE_NAME).write_bytes(b"\x89PNG but damaged")
    png_bomb(inputs / "bomb.png")
    jpeg_bomb(inputs / "bomb.jpg")
    tiff = BOMBS["tif"](tmp_path / "bomb.tif")
    out = tmp_path / "restored"
    before = snapshot(tmp_path, skip=out)
    code, stdout, stderr, peak_mb = run_measured(
        [sys.executable, "-m", "deblurd", "deblur", str(inputs), str(tiff), "-o", str(out)], tmp_path / "logs")
    print(f"deblur of 3 images and 3 bombs (PNG, JPEG, TIFF): peak RSS {peak_mb:.0f} MB")
    assert code == 1, stderr[-3000:]
    for bomb in ("bomb.png", "bomb.jpg", "bomb.tif"):
        assert stderr.count(f"{bomb}: 400.0 MP, over the limit of 24 MP (camera.max_image_megapixels)") == 1, bomb
    assert "Traceback" not in stderr and "DecompressionBomb" not in stderr
    counts = re.search(r"(\d+) restored, (\d+) passed through unchanged, (\d+) failed", stderr)
    assert counts and int(counts[1]) + int(counts[2]) == 3 and counts[3] == "4", stderr[-2000:]
    records = [json.loads(line) for line in (out / "deblur.jsonl").read_text().splitlines()]
    assert sorted(Path(r["input"]).name for r in records) == sorted(["03-heavy.jpg", HTML_NAME, "new\nline.jpg"])
    assert (out / "index.html").is_file() and "<img src=x" not in (out / "index.html").read_text()
    assert "new\\nline.jpg" in stdout and "term\\x1b[31mred" in stderr, "names shown with their escapes"
    assert_no_forged_lines(stdout + stderr)
    assert "new\nline" not in stdout + stderr
    assert peak_mb < PEAK_RSS_MB
    assert_untouched(tmp_path, before, out)
