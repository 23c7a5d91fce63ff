"""The `deblurd` command as users run it: subprocesses, exit codes, one clear message per error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from conftest import assert_consistent

REPO = Path(__file__).resolve().parent.parent


def deblurd(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deblurd", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deblurd.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", [[], ["run"], ["deblur"], ["check-config"], ["status"]])
def test_help(command):
    done = deblurd(*command, "--help")
    assert done.returncode == 0 and "usage: deblurd" in done.stdout


def test_check_config_defaults_and_json(tmp_path):
    done = deblurd("check-config")
    assert done.returncode == 0 and "[camera]" in done.stdout and 'source = "auto"' in done.stdout
    path = _config(tmp_path, '[camera]\nfps = 5\n[output]\ndir = "/srv/results"\n')
    done = deblurd("check-config", "--json", path)
    assert done.returncode == 0
    cfg = json.loads(done.stdout)
    assert cfg["camera"]["fps"] == 5 and cfg["output"]["dir"] == "/srv/results"


@pytest.mark.parametrize("text,message", [
    ("[camera\nfps = 5\n", "not valid TOML"),
    ("[camera]\nfsp = 5\n", "camera.fsp: unknown key"),
    ("[camera]\nfps = 500\n", "camera.fps = 500: Input should be less than or equal to 60 (allowed: more than 0 to 60)"),
    ("[models]\nprecision = \"fp16\"\n", "models.precision = 'fp16'"),
])
def test_check_config_rejects_bad_files(tmp_path, text, message):
    done = deblurd("check-config", _config(tmp_path, text))
    assert done.returncode == 78 and message in done.stderr and str(tmp_path) in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_explicit_config(tmp_path):
    done = deblurd("run", "--config", tmp_path / "nope.toml")
    assert done.returncode == 78 and "config file not found" in done.stderr


def test_run_without_model_pack(tmp_path):
    path = _config(tmp_path, f'[models]\ndir = "{tmp_path}"\n')
    done = deblurd("run", "--config", path, "--frames", 1, "--output", tmp_path / "out")
    assert done.returncode == 66 and f"model pack folder {tmp_path}/photo does not exist" in done.stderr


def test_run_with_a_corrupt_model(tmp_path, pack_copy):
    with open(pack_copy / "heavy.tflite", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff")
    path = _config(tmp_path, f'[models]\ndir = "{pack_copy.parent}"\n')
    done = deblurd("run", "--config", path, "--frames", 1, "--output", tmp_path / "out")
    assert done.returncode == 66 and "heavy.tflite does not match its manifest checksum" in done.stderr


def test_run_output_not_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    done = deblurd("run", "--frames", 1, "--output", tmp_path / "file" / "out")
    assert done.returncode == 73 and "is not writable" in done.stderr and "--output" in done.stderr


def test_run_frames_then_status(tmp_path, photo_pack_dir):
    out = tmp_path / "out"
    done = deblurd("run", "--frames", 4, "--output", out)
    assert done.returncode == 0, done.stderr
    assert "replaying bundled sample frames" in done.stderr
    assert len(assert_consistent(out)) == 4
    status = deblurd("status", "--output", out)
    assert status.returncode == 0 and "frames in" in status.stdout and "MB free" in status.stdout
    assert json.loads(deblurd("status", "--output", out, "--json").stdout)["frames_out"] == 4


def test_status_without_a_daemon(tmp_path):
    done = deblurd("status", "--output", tmp_path)
    assert done.returncode == 1 and "no status file" in done.stderr


def test_sigterm_stops_cleanly(tmp_path, photo_pack_dir):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "deblurd", "run", "--output", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not ((out / "index.jsonl").exists() and (out / "index.jsonl").read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "stopped after" in stderr
    entries = assert_consistent(out)
    state = json.loads((out / "status.json").read_text())
    assert state["frames_out"] == len(entries) >= 2


def test_deblur_reports_bad_images_and_processes_the_rest(tmp_path, samples_dir, photo_pack_dir):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(os.urandom(2000))
    good = samples_dir / "03-heavy.jpg"
    out = tmp_path / "restored"
    done = deblurd("deblur", empty, garbage, tmp_path / "missing.png", good, "-o", out)
    assert done.returncode == 1
    assert f"{empty}: the file is empty (0 bytes)" in done.stderr
    assert f"{garbage}: cannot be read as an image" in done.stderr
    assert f"{tmp_path / 'missing.png'}: no such file" in done.stderr
    assert "3 of 4 image(s) could not be processed" in done.stderr
    assert (out / "03-heavy-restored.jpg").stat().st_size > 0 and str(good) in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["03-heavy-restored.jpg"]


def test_deblur_all_good_and_output_not_writable(tmp_path, samples_dir, photo_pack_dir):
    done = deblurd("deblur", samples_dir / "01-sharp.jpg", samples_dir / "04-semi.jpg", "-o", tmp_path / "o")
    assert done.returncode == 0 and len(list((tmp_path / "o").iterdir())) == 2
    (tmp_path / "file").write_text("x")
    done = deblurd("deblur", samples_dir / "01-sharp.jpg", "-o", tmp_path / "file" / "o")
    assert done.returncode == 73 and "not writable" in done.stderr


def test_deblur_never_writes_one_result_over_another(tmp_path, samples_dir, photo_pack_dir):
    for folder, sample in (("d1", "02-semi.jpg"), ("d2", "05-heavy.jpg")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.jpg").write_bytes((samples_dir / sample).read_bytes())
    done = deblurd("deblur", tmp_path / "d1" / "a.jpg", tmp_path / "d2" / "a.jpg", "-o", tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a-2-restored.jpg", "a-restored.jpg"]
    assert f"{tmp_path / 'd2' / 'a.jpg'}: " in done.stdout and "a-2-restored.jpg" in done.stdout


def test_deblur_save_map_writes_the_map_beside_the_result(tmp_path, samples_dir, photo_pack_dir):
    done = deblurd("deblur", samples_dir / "05-heavy.jpg", "--save-map", "-o", tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["05-heavy-map.png", "05-heavy-restored.jpg"]
    assert "heavy blur, restored (blur map: sharp" in done.stdout
    overlay = cv2.imread(str(tmp_path / "o" / "05-heavy-map.png"))
    assert overlay.shape == cv2.imread(str(samples_dir / "05-heavy.jpg")).shape


def test_run_records_the_blur_map_in_each_sidecar(tmp_path, photo_pack_dir):
    out = tmp_path / "out"
    done = deblurd("run", "--frames", "3", "--output", out)
    assert done.returncode == 0, done.stderr
    sidecars = [json.loads(p.read_text()) for p in out.glob("*/*.json")]
    assert sidecars, sorted(p.name for p in out.rglob("*"))
    for sidecar in sidecars:
        blur_map = sidecar["blur_map"]
        assert len(blur_map["rows"]) == len(blur_map["starts"]["y"]) and blur_map["legend"]["h"] == "heavy"
        assert abs(sum(sidecar["scores"].values()) - 1) < 0.01


def test_run_tells_systemd_ready_status_watchdog_and_stopping(tmp_path, photo_pack_dir):
    import socket

    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(0.1)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "4000000"}
        done = subprocess.run([sys.executable, "-m", "deblurd", "run", "--frames", "3", "--output", tmp_path / "out"],
                              cwd=REPO, env={k: str(v) for k, v in env.items()}, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except (TimeoutError, socket.timeout):
                break
    assert messages[0] == "READY=1" and messages[-1] == "STOPPING=1"
    assert "WATCHDOG=1" in messages and any(m.startswith("STATUS=") and "fps" in m for m in messages)
