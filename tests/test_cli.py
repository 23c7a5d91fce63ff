"""The `deblurd` command as users run it: subprocesses, exit codes, one clear message per error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


@pytest.mark.parametrize("command", [[], ["run"], ["deblur"], ["check-config"], ["status"], ["doctor"], ["collect"],
                                     ["calibrate"]])
def test_help(command):
    done = deblurd(*command, "--help")
    assert done.returncode == 0 and "usage: deblurd" in done.stdout


@pytest.mark.parametrize("command,example", [([], "deblurd deblur photo.jpg shots/ -o restored/"),
                                             (["run"], "deblurd run --frames 12"),
                                             (["deblur"], "--recursive -o restored/"),
                                             (["check-config"], "deblurd check-config /etc/deblurd/deblurd.toml"),
                                             (["doctor"], "deblurd doctor --json"),
                                             (["status"], "deblurd status --output /tmp/out"),
                                             (["collect"], "deblurd collect --positions 0.5,1,2,4"),
                                             (["calibrate"], "deblurd calibrate --pairs pairs/")])
def test_help_ends_with_examples(command, example):
    done = deblurd(*command, "--help")
    assert "examples:" in done.stdout and example in done.stdout.split("examples:")[1]


def test_version():
    from deblurd import __version__

    done = deblurd("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"deblurd {__version__}"


def test_log_level_before_or_after_the_command(tmp_path, photo_pack_dir):
    quiet = deblurd("--log-level", "warning", "run", "--frames", 1, "--output", tmp_path / "a")
    assert quiet.returncode == 0, quiet.stderr
    assert " INFO " not in quiet.stderr, "INFO lines are hidden at WARNING"
    loud = deblurd("run", "-v", "--frames", 1, "--output", tmp_path / "b")
    assert loud.returncode == 0 and " DEBUG " in loud.stderr and " INFO " in loud.stderr
    wrong = deblurd("--log-level", "chatty", "status")
    assert wrong.returncode == 2 and "--log-level: invalid choice: 'CHATTY'" in wrong.stderr


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_run_frames_errors_name_the_flag(value):
    done = deblurd("run", "--frames", value)
    assert done.returncode == 2 and "argument --frames:" in done.stderr and "max_frames" not in done.stderr


def test_check_config_defaults_and_json(tmp_path):
    done = deblurd("check-config")
    assert done.returncode == 0 and "[camera]" in done.stdout and 'source = "auto"' in done.stdout
    path = _config(tmp_path, '[camera]\nfps = 5\n[output]\ndir = "/srv/results"\n')
    done = deblurd("check-config", "--json", path)
    assert done.returncode == 0
    cfg = json.loads(done.stdout)
    assert cfg["camera"]["fps"] == 5 and cfg["output"]["dir"] == "/srv/results"


def test_check_config_names_the_file_it_read(tmp_path):
    done = deblurd("check-config")
    default = Path("/etc/deblurd/deblurd.toml")
    expected = str(default) if default.exists() else f"built-in defaults (no {default})"
    assert done.returncode == 0 and f"config OK: {expected}; pack photo v" in done.stderr
    path = _config(tmp_path, "[camera]\nfps = 5\n")
    done = deblurd("check-config", "--config", path)
    assert done.returncode == 0 and f"config OK: {path}; pack photo v" in done.stderr
    assert "models match their checksums" in done.stderr


def test_check_config_checks_the_pack(tmp_path, pack_copy):
    nope = deblurd("check-config", _config(tmp_path, '[models]\npack = "nope"\n'))
    assert nope.returncode == 66
    assert f"{tmp_path / 'deblurd.toml'}: models.pack: model pack folder" in nope.stderr and "nope" in nope.stderr
    assert "fix: python -m tools.train.export --pack nope" in nope.stderr
    manifest = json.loads((pack_copy / "manifest.json").read_text())
    (pack_copy / manifest["models"]["semi"]["file"]).unlink()
    incomplete = deblurd("check-config", _config(tmp_path, f'[models]\ndir = "{pack_copy.parent}"\n'))
    assert incomplete.returncode == 66 and f"model file {pack_copy / manifest['models']['semi']['file']} is missing" \
        in incomplete.stderr
    (pack_copy / manifest["models"]["semi"]["file"]).write_bytes(b"not the model")
    corrupt = deblurd("check-config", _config(tmp_path, f'[models]\ndir = "{pack_copy.parent}"\n'))
    assert corrupt.returncode == 66 and "does not match its manifest checksum" in corrupt.stderr


@pytest.mark.parametrize("text,message", [
    ("[camera\nfps = 5\n", "not valid TOML"),
    ("[camera]\nfsp = 5\n", "camera.fsp: unknown key"),
    ("[camera]\nfps = 500\n",
     "camera.fps = 500: Input should be less than or equal to 60 (allowed: more than 0 to 60)"),
    ("[models]\nprecision = \"fp16\"\n", "models.precision = 'fp16'"),
    ("[gpio]\nenabled = \"yes\"\n", "gpio.enabled = 'yes': Input should be a valid boolean (write true or false"),
    ("[camera]\nwidth = \"800\"\n", "camera.width = '800': Input should be a valid integer"),
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
    assert status.returncode == 3, "stopped"
    assert "frames in" in status.stdout and "MB free" in status.stdout
    assert json.loads(deblurd("status", "--output", out, "--json").stdout)["frames_out"] == 4


def test_status_without_a_daemon(tmp_path):
    done = deblurd("status", "--output", tmp_path)
    assert done.returncode == 4 and "no status file" in done.stderr


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
    assert "stopped (SIGTERM) after" in stderr
    entries = assert_consistent(out)
    state = json.loads((out / "status.json").read_text())
    assert state["frames_out"] == len(entries) >= 2


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
            except TimeoutError:
                break
    assert messages[0] == "READY=1" and messages[-1] == "STOPPING=1"
    assert "WATCHDOG=1" in messages and any(m.startswith("STATUS=") and "fps" in m for m in messages)


@pytest.mark.parametrize("buffered", [True, False])
def test_a_reader_that_has_gone_is_not_an_error(buffered):
    env = ({k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
           | ({} if buffered else {"PYTHONUNBUFFERED": "1"}))
    proc = subprocess.Popen([sys.executable, "-m", "deblurd", "doctor", "--json"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdout.close()  # like `| head` that has read enough before deblurd writes
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1) and "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_check_config_defaults_is_the_reference_and_docs_configuration_md_is_its_output():
    done = deblurd("check-config", "--defaults")
    assert done.returncode == 0 and done.stdout.startswith("# deblurd configuration: every key at its default")
    assert "\n[camera]\n" in done.stdout and '\nsource = "auto"\n' in done.stdout and done.stderr == ""
    page = deblurd("check-config", "--defaults", "--markdown")
    assert page.returncode == 0 and f"```toml\n{done.stdout}```\n" in page.stdout
    assert (REPO / "docs" / "configuration.md").read_text() == page.stdout, (
        "docs/configuration.md is out of date: regenerate it with "
        "`python -m deblurd check-config --defaults --markdown > docs/configuration.md`")
    misuse = deblurd("check-config", "--markdown")
    assert misuse.returncode == 2 and "--markdown goes with --defaults" in misuse.stderr


@pytest.mark.parametrize("source", ["replay", "auto"])
def test_check_config_refuses_a_replay_path_run_could_not_read(tmp_path, source):
    done = deblurd("check-config", _config(tmp_path, f'[camera]\nsource = "{source}"\nreplay_path = "/nope"\n'))
    assert done.returncode == 78 and "config OK" not in done.stderr
    assert f"{tmp_path / 'deblurd.toml'}: camera.replay_path: /nope does not exist" in done.stderr
    assert "fix: set camera.replay_path to a readable folder of images or a video file" in done.stderr
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "notes.txt").write_text("no images here")
    empty = deblurd("check-config", _config(tmp_path, f'[camera]\nsource = "{source}"\n'
                                                      f'replay_path = "{tmp_path / "frames"}"\n'))
    assert empty.returncode == 78 and f"camera.replay_path: {tmp_path / 'frames'} holds no images" in empty.stderr
    run = deblurd("run", "--config", tmp_path / "deblurd.toml", "--frames", 1, "--output", tmp_path / "out")
    assert run.returncode != 0, "what check-config refuses, run cannot do either"


def test_check_config_accepts_a_replay_folder_and_a_sim_scene(tmp_path, samples_dir):
    done = deblurd("check-config", _config(tmp_path, f'[camera]\nsource = "replay"\nreplay_path = "{samples_dir}"\n'
                                                     f'[output]\ndir = "{tmp_path / "a" / "b"}"\n'))
    assert done.returncode == 0 and "config OK" in done.stderr, done.stderr
    sim = deblurd("check-config", _config(tmp_path, '[camera]\nsource = "sim"\nsim_scene = "/nope.jpg"\n'))
    assert sim.returncode == 78 and "camera.sim_scene: /nope.jpg does not exist" in sim.stderr
    assert "or a photo, or remove it" in sim.stderr


def test_check_config_checks_the_output_folder_the_state_file_and_a_configured_lens_profile(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    output = deblurd("check-config", _config(tmp_path, f'[output]\ndir = "{blocker / "out"}"\n'))
    assert output.returncode == 73 and "config OK" not in output.stderr
    assert (f"output.dir: {blocker / 'out'}: {blocker} is a file, so {blocker / 'out'} cannot be created"
            in output.stderr)
    state = deblurd("check-config", _config(tmp_path, f'[service]\nstate_file = "{tmp_path}"\n'))
    assert state.returncode == 73 and f"service.state_file: {tmp_path}: {tmp_path} is a folder, not a file" \
        in state.stderr
    lens = deblurd("check-config", _config(tmp_path, f'[lens]\nprofile = "{tmp_path / "lens.json"}"\n'))
    assert lens.returncode == 78 and f"lens.profile: {tmp_path / 'lens.json'} does not exist" in lens.stderr
    assert "remove lens.profile to run without one" in lens.stderr


@pytest.mark.parametrize("text,message", [
    ('[output]\ndir = "/tmp/a\\u0000b"\n', "output.dir = '/tmp/a\\x00b': Value error, a path may not hold control"),
    ('[camera]\nreplay_path = "/srv/a\\nb"\n', "camera.replay_path = '/srv/a\\nb': Value error, a path may not hold"),
    ('[models]\npack = "../.."\n', "models.pack = '../..': Value error, must be a plain folder name inside models.dir"),
])
def test_check_config_and_run_refuse_a_hostile_value_naming_the_key(tmp_path, text, message):
    for args in (["check-config", _config(tmp_path, text)], ["run", "--config", tmp_path / "deblurd.toml",
                                                             "--frames", 1, "--output", tmp_path / "out"]):
        done = deblurd(*args)
        assert done.returncode == 78 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
