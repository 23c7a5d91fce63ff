"""check the installation: camera and lens, GPIO, thermal sensors, models, output folder, TFLite runtime

Each line is ok, warning or failed, and a problem comes with its fix. The exit status is 1 when anything
failed. Run it as the service user (`sudo -u deblurd deblurd doctor`) so permissions are checked as the
daemon sees them; while the daemon runs, the camera is reported from its status file instead of opened.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Optional

from deblurd.config import CameraConfig, Config, ConfigError, GpioConfig, ModelsConfig, OutputConfig, load_config
from deblurd.manifest import PackError, load_manifest, verify_file
from deblurd.state_file import RUNNING, is_stale, read_status
from deblurd.thermal import FAN_HWMON, TEMP_PATH, SysfsThermalSensor

Level = Literal["ok", "warning", "failed"]
RUNTIME_DISTRIBUTIONS = {"ai-edge-litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime",
                         "tensorflow": "tensorflow"}


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    fix: str = ""

    def render(self) -> str:
        line = f"{self.level:<8} {self.name:<9} {self.detail}"
        return line + (f"\n{'':<18} fix: {self.fix}" if self.fix else "")


def _running_daemon(cfg: Config) -> Optional[dict[str, Any]]:
    """The daemon's state while it runs (a fresh status that does not say stopped), else None."""
    try:
        state = read_status(cfg.state_file)
    except (OSError, ValueError):
        return None
    return state if state.get("state", RUNNING) == RUNNING and not is_stale(state, time.time()) else None


def _open_camera(cfg: CameraConfig) -> tuple[Optional[str], Optional[tuple[float, float, float]]]:
    """(error, lens range) after opening and closing the real camera once."""
    from deblurd.camera_errors import CameraError
    from deblurd.picamera_source import PicameraSource

    source = PicameraSource(cfg)
    try:
        source.open()
        return None, source.lens_range()
    except CameraError as exc:
        return str(exc), None
    finally:
        source.close()


def check_camera(cfg: Config) -> list[Check]:
    from deblurd.picamera_source import camera_present

    if cfg.camera.source == "replay":
        return [Check("camera", "ok", "replay source configured (no camera wanted)")]
    state = _running_daemon(cfg)
    if state is not None and state.get("source") == "picamera2":
        return [Check("camera", "ok", f"in use by the running daemon (pid {state.get('pid')}); "
                                      f"lens at {state.get('lens_position')} dioptres")]
    if not camera_present():
        level: Level = "failed" if cfg.camera.source == "picamera2" else "warning"
        return [Check("camera", level, "no camera found (picamera2 missing or libcamera lists none)"
                      + ("" if level == "failed" else "; the daemon will replay sample frames"),
                      "seat the ribbon cable at both ends, check `rpicam-hello --list-cameras`, and install "
                      "python3-picamera2 (deploy/install.sh does)")]
    error, lens = _open_camera(cfg.camera)
    if error:
        return [Check("camera", "failed", error, "sudo systemctl stop deblurd, then run deblurd doctor again")]
    checks = [Check("camera", "ok", "picamera2 camera opened")]
    if lens is None:
        checks.append(Check("lens", "warning", "fixed focus: lens settings are ignored and `deblurd collect` "
                                               "cannot run", "use a Camera Module 3 for lens control"))
    else:
        checks.append(Check("lens", "ok", f"focus motor, {lens[0]:g}-{lens[1]:g} dioptres (default {lens[2]:g})"))
    return checks


def check_gpio(cfg: GpioConfig, dev: Path = Path("/dev")) -> list[Check]:
    if not cfg.enabled:
        return [Check("gpio", "ok", "disabled in the config (gpio.enabled = false)")]
    chips = sorted(glob.glob(str(dev / "gpiochip*")))
    if not chips:
        return [Check("gpio", "failed", f"no {dev}/gpiochip* device: GPIO is unavailable here",
                      "run on a Raspberry Pi, or set gpio.enabled = false")]
    usable = [c for c in chips if os.access(c, os.R_OK | os.W_OK)]
    if not usable:
        return [Check("gpio", "failed", f"{', '.join(chips)} not readable and writable by this user",
                      "sudo usermod -aG gpio deblurd (the unit's SupplementaryGroups has gpio)")]
    try:
        import lgpio  # noqa: F401
    except ImportError:
        return [Check("gpio", "failed", "the lgpio module is not importable (gpiozero's pin factory on the Pi 5)",
                      "sudo apt install python3-lgpio (the venv must use --system-site-packages)")]
    led = f", LED GPIO{cfg.led_pin}" if cfg.led_pin is not None else ", no LED"
    return [Check("gpio", "ok", f"{len(usable)} GPIO chip(s), lgpio present; button GPIO{cfg.button_pin}{led}")]


def check_thermal(root: Path) -> list[Check]:
    r = SysfsThermalSensor.for_root(root).read()
    checks = []
    if r["temp_c"] is None:
        checks.append(Check("thermal", "warning", f"no CPU temperature at {root / TEMP_PATH}: thermal pacing is off",
                            "check thermal.sysfs_root in the config"))
    else:
        checks.append(Check("thermal", "ok", f"CPU {r['temp_c']:.1f} °C"))
    if r["fan_pwm"] is None and r["fan_state"] is None:
        checks.append(Check("fan", "warning", f"no active cooler found ({root / FAN_HWMON})",
                            "fit the Raspberry Pi Active Cooler; without it long restoration runs will throttle"))
    else:
        checks.append(Check("fan", "ok", f"cooler state {r['fan_state']}, pwm {r['fan_pwm']}, {r['fan_rpm']} rpm "
                                         f"(the tachometer may read 0 at mid duty)"))
    if r["under_voltage"] is None:
        checks.append(Check("power", "warning", "throttle flags unavailable (no get_throttled, no vcgencmd)",
                            "sudo apt install raspi-utils (vcgencmd), or ignore on a non-Pi machine"))
    elif r["under_voltage"]:
        checks.append(Check("power", "failed", f"under-voltage now (flags {r['throttled_raw']})",
                            "use the official 5 V / 5 A USB-C power supply"))
    elif r["under_voltage_occurred"] or r["throttled_occurred"]:
        checks.append(Check("power", "warning", f"under-voltage or throttling has occurred since boot "
                                                f"(flags {r['throttled_raw']})", "check the power supply and cooling"))
    else:
        checks.append(Check("power", "ok", f"no under-voltage or throttling since boot (flags {r['throttled_raw']})"))
    return checks


def check_models(cfg: ModelsConfig) -> list[Check]:
    pack_dir = cfg.dir / cfg.pack
    try:
        manifest = load_manifest(pack_dir)
        for entry in manifest.models.values():
            if cfg.precision == "int8":
                verify_file(pack_dir, entry.file, entry.sha256)
            else:
                verify_file(pack_dir, entry.float_file, entry.float_sha256)
    except PackError as exc:
        return [Check("models", "failed", str(exc))]
    return [Check("models", "ok", f"pack {manifest.name} v{manifest.version} in {pack_dir}: "
                                  f"{len(manifest.models)} {cfg.precision} models match their checksums")]


def check_runtime(cfg: ModelsConfig) -> list[Check]:
    from deblurd.inference import interpreter_class

    try:
        _, name = interpreter_class(cfg.runtime)
    except PackError as exc:
        return [Check("tflite", "failed", str(exc))]
    try:
        version = metadata.version(RUNTIME_DISTRIBUTIONS[name])
    except metadata.PackageNotFoundError:
        version = "version unknown"
    return [Check("tflite", "ok", f"{name} {version}")]


def check_output(cfg: OutputConfig) -> list[Check]:
    existing = cfg.dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return [Check("output", "failed", f"{existing} is not writable by this user (output.dir = {cfg.dir})",
                      "sudo chown -R deblurd: /var/lib/deblurd, or set output.dir to a writable folder")]
    free_mb = shutil.disk_usage(existing).free / 2**20
    where = str(cfg.dir) + ("" if cfg.dir.exists() else " (created on first run)")
    if free_mb < cfg.min_free_mb:
        return [Check("output", "failed", f"{where}: only {free_mb:.0f} MB free, below min_free_mb "
                                          f"{cfg.min_free_mb}", "free space, or lower output.keep_days")]
    level: Level = "warning" if free_mb < 4 * cfg.min_free_mb else "ok"
    return [Check("output", level, f"{where} writable, {free_mb:.0f} MB free",
                  "free some space soon" if level == "warning" else "")]


def check_journald() -> list[Check]:
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        return [Check("journald", "warning", "systemd-python not importable: logs go to stderr (still journaled)",
                      "sudo apt install python3-systemd")]
    return [Check("journald", "ok", "systemd-python present")]


def diagnose(cfg: Config) -> list[Check]:
    return (check_camera(cfg) + check_gpio(cfg.gpio) + check_thermal(cfg.thermal.sysfs_root)
            + check_models(cfg.models) + check_runtime(cfg.models) + check_output(cfg.output) + check_journald())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="config file (default /etc/deblurd/deblurd.toml; built-in defaults when it is absent)")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(Check("config", "failed", str(exc)).render())
        return 1
    checks = [Check("config", "ok", str(args.config or "built-in defaults or /etc/deblurd/deblurd.toml"))]
    checks += diagnose(cfg)
    for check in checks:
        print(check.render())
    failed = [c.name for c in checks if c.level == "failed"]
    print(f"{len(failed)} failed: {', '.join(failed)}" if failed else "all checks passed", file=sys.stderr)
    return 1 if failed else 0
