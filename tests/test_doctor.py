"""`deblurd doctor`: each check against temporary trees, the shipped model pack, and whole runs."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import types
from pathlib import Path

import pytest

from deblurd.commands import doctor
from deblurd.config import REPO_MODELS_DIR, Config, GpioConfig, ModelsConfig, OutputConfig


def levels(checks: list[doctor.Check]) -> dict[str, str]:
    return {c.name: c.level for c in checks}


def pi5_tree(root: Path, throttled: int = 0) -> Path:
    (root / "sys/class/thermal/thermal_zone0").mkdir(parents=True)
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("52300\n")
    cdev = root / "sys/class/thermal/cooling_device0"
    cdev.mkdir()
    (cdev / "type").write_text("pwm-fan\n")
    (cdev / "cur_state").write_text("1\n")
    hwmon = root / "sys/devices/platform/cooling_fan/hwmon/hwmon2"
    hwmon.mkdir(parents=True)
    (hwmon / "pwm1").write_text("75\n")
    (hwmon / "fan1_input").write_text("2900\n")
    firmware = root / "sys/devices/platform/soc/soc:firmware"
    firmware.mkdir(parents=True)
    (firmware / "get_throttled").write_text(f"{throttled:x}\n")
    return root


def test_thermal_on_a_pi5_tree(tmp_path: Path) -> None:
    checks = doctor.check_thermal(pi5_tree(tmp_path))
    assert levels(checks) == {"thermal": "ok", "fan": "ok", "power": "ok"}
    assert "52.3 °C" in checks[0].detail and "2900 rpm" in checks[1].detail


def test_thermal_under_voltage_fails(tmp_path: Path) -> None:
    assert levels(doctor.check_thermal(pi5_tree(tmp_path, 0x50005)))["power"] == "failed"


def test_thermal_on_a_dev_machine_warns(tmp_path: Path) -> None:
    checks = doctor.check_thermal(tmp_path)
    assert levels(checks) == {"thermal": "warning", "fan": "warning", "power": "warning"}
    assert all(c.fix for c in checks)


def test_gpio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = GpioConfig(enabled=True, button_pin=17, led_pin=27)
    assert levels(doctor.check_gpio(GpioConfig(button_pin=17), tmp_path)) == {"gpio": "ok"}  # disabled
    assert levels(doctor.check_gpio(cfg, tmp_path)) == {"gpio": "failed"}  # no chip
    (tmp_path / "gpiochip0").write_text("")
    monkeypatch.setitem(sys.modules, "lgpio", None)
    missing = doctor.check_gpio(cfg, tmp_path)
    assert levels(missing) == {"gpio": "failed"} and "python3-lgpio" in missing[0].fix
    monkeypatch.setitem(sys.modules, "lgpio", types.ModuleType("lgpio"))
    ok = doctor.check_gpio(cfg, tmp_path)
    assert levels(ok) == {"gpio": "ok"} and "GPIO17" in ok[0].detail and "GPIO27" in ok[0].detail


def test_models_shipped_pack_and_a_corrupt_copy(tmp_path: Path) -> None:
    assert levels(doctor.check_models(ModelsConfig())) == {"models": "ok"}
    copy = tmp_path / "photo"
    shutil.copytree(REPO_MODELS_DIR / "photo", copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / manifest["models"]["semi"]["file"]).write_bytes(b"not a model")
    bad = doctor.check_models(ModelsConfig(dir=tmp_path))
    assert levels(bad) == {"models": "failed"} and "checksum" in bad[0].detail
    assert levels(doctor.check_models(ModelsConfig(dir=tmp_path, pack="nope"))) == {"models": "failed"}


def test_runtime_is_reported_with_the_int8_kernels_it_runs() -> None:
    checks = doctor.check_runtime(ModelsConfig())
    assert levels(checks) == {"tflite": "ok"} and checks[0].detail.endswith(", int8 on xnnpack")


def test_int8_on_the_builtin_kernels_is_a_warning_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where XNNPACK cannot read the CPU (a chroot without /sys) it stays out silently; doctor says so."""
    from deblurd.restore.tflite import TfliteModel

    monkeypatch.setattr(TfliteModel, "kernels", property(lambda self: "builtin"))
    checks = doctor.check_runtime(ModelsConfig())
    assert levels(checks) == {"tflite": "warning"} and "builtin kernels" in checks[0].detail
    assert "/sys/devices/system/cpu" in checks[0].fix


def test_output_writable_and_free_space(tmp_path: Path) -> None:
    ok = doctor.check_output(OutputConfig(dir=tmp_path / "out" / "new", min_free_mb=10))
    assert levels(ok) == {"output": "ok"} and "created on first run" in ok[0].detail
    assert levels(doctor.check_output(OutputConfig(dir=tmp_path, min_free_mb=1_000_000))) == {"output": "failed"}


def test_output_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for folder, problem in ((blocker, f"{blocker} is a file, not a folder"),
                            (blocker / "out" / "day", f"{blocker} is a file, so {blocker / 'out' / 'day'} cannot")):
        (check,) = doctor.check_output(OutputConfig(dir=folder))
        assert (check.level, check.key, check.exit_code) == ("failed", "output.dir", 73) and problem in check.detail


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_and_state_file_in_a_folder_this_user_cannot_write(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    (output,) = doctor.check_output(OutputConfig(dir=locked / "out"), free_space=False)
    assert output.level == "failed" and f"{locked} is not writable by this user" in output.detail
    cfg = Config.model_validate({"service": {"state_file": str(locked / "status.json")}})
    (state,) = doctor.check_state_file(cfg)
    assert (state.level, state.key) == ("failed", "service.state_file")


def test_state_file_checked_only_when_set_apart_from_the_output(tmp_path: Path) -> None:
    assert doctor.check_state_file(Config()) == []
    cfg = Config.model_validate({"service": {"state_file": str(tmp_path / "run" / "status.json")}})
    assert levels(doctor.check_state_file(cfg)) == {"state": "ok"}


def test_replay_path_and_lens_profile_that_run_could_not_read(tmp_path: Path, samples_dir: Path) -> None:
    replay = Config.model_validate({"camera": {"source": "replay", "replay_path": str(tmp_path / "nope")}})
    (camera,) = doctor.check_camera(replay)
    assert (camera.level, camera.key, camera.exit_code) == ("failed", "camera.replay_path", 78)
    assert camera.render().startswith(f"failed   camera    camera.replay_path: {tmp_path / 'nope'} does not exist")
    good = Config.model_validate({"camera": {"source": "replay", "replay_path": str(samples_dir)}})
    assert levels(doctor.check_camera(good)) == {"camera": "ok"}
    profile = Config.model_validate({"lens": {"profile": str(tmp_path / "lens.json")}})
    (lens,) = doctor.check_lens_profile(profile)
    assert (lens.level, lens.key, lens.exit_code) == ("failed", "lens.profile", 78)
    default = Config.model_validate({"output": {"dir": str(tmp_path)}})
    assert levels(doctor.check_lens_profile(default)) == {"lens": "ok"}


def test_auto_without_a_camera_replays_the_configured_path(tmp_path: Path, samples_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deblurd.capture.picamera_source.camera_present", lambda: False)
    missing = Config.model_validate({"camera": {"replay_path": str(tmp_path / "nope")}})
    assert levels(doctor.check_camera(missing)) == {"camera": "failed"}
    assert [c.key for c in doctor.config_checks(missing) if c.level == "failed"] == ["camera.replay_path"]
    (tmp_path / "frames").mkdir()
    shutil.copy(samples_dir / "03-heavy.jpg", tmp_path / "frames")
    found = Config.model_validate({"camera": {"replay_path": str(tmp_path / "frames")}})
    (camera,) = doctor.check_camera(found)
    assert camera.level == "warning" and f"will replay {tmp_path / 'frames'}" in camera.detail
    monkeypatch.setattr("deblurd.capture.picamera_source.camera_present", lambda: True)
    assert "camera" not in levels(doctor.config_checks(missing)), "with a camera, replay_path is not read"


def test_doctor_runs_the_config_checks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_config(tmp_path, REPO_MODELS_DIR)
    path.write_text(path.read_text().replace('source = "replay"', 'source = "replay"\nreplay_path = "/nope"'))
    assert doctor.run(argparse.Namespace(config=path, json=False)) == 1
    out = capsys.readouterr().out
    assert "failed   camera    camera.replay_path: /nope does not exist" in out
    assert "fix: set camera.replay_path to a readable folder" in out


def test_camera_replay_missing_and_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config.model_validate({"camera": {"source": "replay"}, "output": {"dir": str(tmp_path)}})
    assert levels(doctor.check_camera(cfg)) == {"camera": "ok"}
    monkeypatch.setattr("deblurd.capture.picamera_source.camera_present", lambda: False)
    auto = cfg.model_copy(update={"camera": cfg.camera.model_copy(update={"source": "auto"})})
    assert levels(doctor.check_camera(auto)) == {"camera": "warning"}
    wanted = cfg.model_copy(update={"camera": cfg.camera.model_copy(update={"source": "picamera2"})})
    assert levels(doctor.check_camera(wanted)) == {"camera": "failed"}
    state = {"pid": 42, "updated": time.time(), "interval_s": 5, "source": "picamera2", "lens_position": 1.5}
    (tmp_path / "status.json").write_text(json.dumps(state))
    in_use = doctor.check_camera(wanted)
    assert levels(in_use) == {"camera": "ok"} and "pid 42" in in_use[0].detail
    (tmp_path / "status.json").write_text(json.dumps({**state, "state": "stopped", "exit_reason": "SIGTERM"}))
    assert levels(doctor.check_camera(wanted)) == {"camera": "failed"}, "a stopped daemon holds no camera"


def test_camera_opened_reports_the_lens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config.model_validate({"camera": {"source": "picamera2"}, "output": {"dir": str(tmp_path)}})
    monkeypatch.setattr("deblurd.capture.picamera_source.camera_present", lambda: True)
    monkeypatch.setattr(doctor, "_open_camera", lambda cam: (None, (0.0, 15.0, 1.0)))
    assert levels(doctor.check_camera(cfg)) == {"camera": "ok", "lens": "ok"}
    monkeypatch.setattr(doctor, "_open_camera", lambda cam: (None, None))
    assert levels(doctor.check_camera(cfg)) == {"camera": "ok", "lens": "warning"}
    monkeypatch.setattr(doctor, "_open_camera", lambda cam: ("the camera is busy", None))
    assert levels(doctor.check_camera(cfg)) == {"camera": "failed"}


def write_config(tmp_path: Path, models_dir: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "deblurd.toml"
    path.write_text(f'[camera]\nsource = "replay"\n[models]\ndir = "{models_dir}"\n'
                    f'[output]\ndir = "{tmp_path / "out"}"\nmin_free_mb = 10\n'
                    f'[thermal]\nsysfs_root = "{pi5_tree(tmp_path / "root")}"\n')
    return path


def test_run_passes_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_config(tmp_path, REPO_MODELS_DIR)
    assert doctor.run(argparse.Namespace(config=path, json=False)) == 0
    out = capsys.readouterr().out
    assert "ok       models" in out and "ok       output" in out and f"ok       config    {path}; " in out
    assert doctor.run(argparse.Namespace(config=write_config(tmp_path / "b", tmp_path / "none"), json=False)) == 1
    captured = capsys.readouterr()
    assert "failed   models" in captured.out and captured.out.splitlines()[-1].startswith("1 failed (models), ")
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nsauce = 1\n")
    assert doctor.run(argparse.Namespace(config=bad, json=False)) == 1
    assert "failed   config" in capsys.readouterr().out


def test_the_last_line_counts_warnings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_config(tmp_path, REPO_MODELS_DIR)
    path.write_text(path.read_text().replace(f'sysfs_root = "{tmp_path / "root"}"', f'sysfs_root = "{tmp_path}"'))
    assert doctor.run(argparse.Namespace(config=path, json=False)) == 0, "warnings alone do not fail"
    last = capsys.readouterr().out.splitlines()[-1]
    expected = 3 if doctor.check_journald()[0].level == "ok" else 4  # without systemd-python, a fourth warning
    assert last.startswith(f"0 failed, {expected} warnings (thermal, fan, power") and "passed" not in last
    checks = [doctor.Check("a", "ok", ""), doctor.Check("b", "ok", "")]
    assert doctor.summary(checks) == "all 2 checks passed"
    assert doctor.summary(checks + [doctor.Check("c", "warning", "")]) == "0 failed, 1 warning (c)"


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert doctor.run(argparse.Namespace(config=write_config(tmp_path, tmp_path / "none"), json=True)) == 1
    report = json.loads(capsys.readouterr().out)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["models"]["level"] == "failed" and by_name["models"]["fix"]
    assert report["failed"] == 1 and report["summary"].startswith("1 failed (models)")
    assert set(by_name["output"]) == {"name", "level", "key", "detail", "fix"}
    assert by_name["models"]["key"] == "models.pack"


def test_a_pi_is_known_by_its_device_tree_or_its_config(tmp_path: Path) -> None:
    model = tmp_path / "model"
    assert not doctor.running_on_pi(Config(), model)
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert doctor.running_on_pi(Config(), model)
    model.write_bytes(b"Some Other Board\x00")
    assert not doctor.running_on_pi(Config(), model)
    assert doctor.running_on_pi(Config.model_validate({"gpio": {"enabled": True}}), model)
    assert doctor.running_on_pi(Config.model_validate({"camera": {"source": "picamera2"}}), model)


def test_fixes_fit_where_doctor_runs(tmp_path: Path) -> None:
    missing = ModelsConfig(dir=tmp_path, pack="photo")
    (on_pi,) = doctor.check_models(missing, on_pi=True)
    assert "sudo deploy/install.sh" in on_pi.fix and "tools" not in on_pi.fix + on_pi.detail
    assert f"model pack folder {tmp_path / 'photo'} does not exist" == on_pi.detail
    (on_pc,) = doctor.check_models(missing, on_pi=False)
    assert "python -m tools.train.export --pack photo" in on_pc.fix and "install.sh" not in on_pc.fix
    pc_thermal = doctor.check_thermal(tmp_path, on_pi=False)
    pi_thermal = doctor.check_thermal(tmp_path, on_pi=True)
    assert all("none needed on a PC" in c.fix for c in pc_thermal)
    assert "Active Cooler" in pi_thermal[1].fix and "raspi-utils" in pi_thermal[2].fix
