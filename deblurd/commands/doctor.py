"""check the installation: camera, lens profile, GPIO, thermal sensors, models, output folder, TFLite runtime

Each line is ok, warning or failed, and a problem comes with its fix, for where it runs: on a Raspberry Pi the
installer (deploy/install.sh), on a PC the repository's tools. The last line counts failures and warnings; the
exit status is 1 when anything failed. Run it as the service user (`sudo -u deblurd deblurd doctor`) so
permissions are checked as the daemon sees them; while the daemon runs, the camera is reported from its status
file instead of opened.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from deblurd.capture.camera import IMAGE_EXTENSIONS
from deblurd.config import (
    CameraConfig,
    Config,
    ConfigError,
    GpioConfig,
    ModelsConfig,
    OutputConfig,
    add_config_argument,
    config_source,
    load_config,
)
from deblurd.daemon.thermal import FAN_HWMON, TEMP_PATH, SysfsThermalSensor
from deblurd.errors import ExitCode
from deblurd.optics.lens_profile import LensProfileError, load_profile, profile_path
from deblurd.output.state_file import RUNNING, is_stale, read_status
from deblurd.restore.manifest import PackError, load_manifest, verify_file

Level = Literal["ok", "warning", "failed"]
RUNTIME_DISTRIBUTIONS = {"ai-edge-litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime",
                         "tensorflow": "tensorflow"}
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
INSTALLER = "sudo deploy/install.sh"
"""Run from the deblurd checkout on the Pi: it reinstalls the program, the models and the runtime (safe to rerun)."""
EXAMPLES = """examples:
  sudo -u deblurd /opt/deblurd/venv/bin/deblurd doctor --config /etc/deblurd/deblurd.toml   on the Pi
  deblurd doctor                       on a PC, with the defaults
  deblurd doctor --json | jq '.checks[] | select(.level != "ok")'
"""


def running_on_pi(cfg: Config, model_file: Path = DEVICE_TREE_MODEL) -> bool:
    """A Raspberry Pi by its device tree, or a config written for one (the camera or the GPIO asked for)."""
    try:
        if model_file.read_bytes().startswith(b"Raspberry Pi"):
            return True
    except OSError:
        pass
    return cfg.camera.source == "picamera2" or cfg.gpio.enabled


@dataclass(frozen=True)
class Check:
    """One line of the report; `key` is the config key to blame and `exit_code` what `check-config` exits with
    when this check fails (the code `run` would end with)."""

    name: str
    level: Level
    detail: str
    fix: str = ""
    key: str = ""
    exit_code: int = field(default=ExitCode.FAILURE, compare=False)

    @property
    def message(self) -> str:
        return f"{self.key}: {self.detail}" if self.key else self.detail

    def render(self) -> str:
        line = f"{self.level:<8} {self.name:<9} {self.message}"
        return line + (f"\n{'':<18} fix: {self.fix}" if self.fix else "")

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "level": self.level, "key": self.key, "detail": self.detail, "fix": self.fix}


def _running_daemon(cfg: Config) -> dict[str, Any] | None:
    """The daemon's state while it runs (a fresh status that does not say stopped), else None."""
    try:
        state = read_status(cfg.state_file)
    except (OSError, ValueError):
        return None
    return state if state.get("state", RUNNING) == RUNNING and not is_stale(state, time.time()) else None


def _open_camera(cfg: CameraConfig) -> tuple[str | None, tuple[float, float, float] | None]:
    """(error, lens range) after opening and closing the real camera once."""
    from deblurd.capture.picamera_source import PicameraSource
    from deblurd.errors import CameraError

    source = PicameraSource(cfg)
    try:
        source.open()
        return None, source.lens_range()
    except CameraError as exc:
        return str(exc), None
    finally:
        source.close()


def _source_problem(path: Path) -> str | None:
    """Why a replay folder or video (or a sim scene) cannot be read, or None."""
    if not os.path.exists(path):
        return "does not exist"
    if not path.is_dir():
        return None if os.access(path, os.R_OK) else "is not readable by this user"
    try:
        if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()):
            return f"holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
    except OSError as exc:
        return f"cannot be listed by this user ({exc.strerror or exc})"
    return None


def check_source(cam: CameraConfig) -> list[Check]:
    """What the replay or simulated source will read (the fallback replay when `auto` finds no camera)."""
    if cam.source == "sim":
        key, path, what = "camera.sim_scene", cam.sim_scene, f"simulated Camera Module 3 (seed {cam.sim_seed})"
    else:
        key, path, what = "camera.replay_path", cam.replay_path, "replay"
    if path is None:
        return [Check("camera", "ok", f"{what} of the bundled samples")]
    problem = _source_problem(path)
    if problem:
        return [Check("camera", "failed", f"{path} {problem}", f"set {key} to a readable folder of images"
                      + (" or a video file" if cam.source != "sim" else " or a photo") + ", or remove it for the "
                      "bundled samples", key, ExitCode.CONFIG)]
    return [Check("camera", "ok", f"{what} of {path}")]


def check_camera(cfg: Config, on_pi: bool = False) -> list[Check]:
    from deblurd.capture.picamera_source import camera_present

    if cfg.camera.source in ("replay", "sim"):
        return check_source(cfg.camera)
    state = _running_daemon(cfg)
    if state is not None and state.get("source") == "picamera2":
        return [Check("camera", "ok", f"in use by the running daemon (pid {state.get('pid')}); "
                                      f"lens at {state.get('lens_position')} dioptres")]
    if not camera_present():
        if cfg.camera.source == "auto" and cfg.camera.replay_path is not None:
            return [Check("camera", "warning", f"no camera found; the daemon will replay {cfg.camera.replay_path}")
                    if c.level == "ok" else c for c in check_source(cfg.camera)]
        level: Level = "failed" if cfg.camera.source == "picamera2" else "warning"
        return [Check("camera", level, "no camera found (picamera2 missing or libcamera lists none)"
                      + ("" if level == "failed" else "; the daemon will replay sample frames"),
                      "seat the ribbon cable at both ends, check `rpicam-hello --list-cameras`, and install "
                      f"python3-picamera2 ({INSTALLER} does)" if on_pi else
                      'none needed on a PC (set camera.source = "replay" to say so)')]
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


def check_lens_profile(cfg: Config) -> list[Check]:
    """The lens profile `deblurd calibrate` wrote: what it says, or why it is missing or unreadable."""
    path = profile_path(cfg.state_file, cfg.lens.profile)
    key = "lens.profile" if cfg.lens.profile is not None else ""
    if not path.exists() and key:
        return [Check("lens", "failed", f"{path} does not exist", "deblurd calibrate --pairs DIR writes it, or "
                      "remove lens.profile to run without one", key, ExitCode.CONFIG)]
    if not path.exists():
        return [Check("lens", "ok", f"no lens profile at {path} (optional: `deblurd collect`, then `deblurd "
                                    f"calibrate --pairs DIR` measures the blur per LensPosition)")]
    try:
        return [Check("lens", "ok", load_profile(path).summary())]
    except LensProfileError as exc:
        return [Check("lens", "failed", str(exc), "deblurd calibrate --pairs DIR rewrites it", key, ExitCode.CONFIG)]


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


def check_thermal(root: Path, on_pi: bool = False) -> list[Check]:
    pc = "none needed on a PC: thermal pacing is for the Pi"
    r = SysfsThermalSensor.for_root(root).read()
    checks = []
    if r["temp_c"] is None:
        checks.append(Check("thermal", "warning", f"no CPU temperature at {root / TEMP_PATH}: thermal pacing is off",
                            "check thermal.sysfs_root in the config" if on_pi else pc))
    else:
        checks.append(Check("thermal", "ok", f"CPU {r['temp_c']:.1f} °C"))
    if r["fan_pwm"] is None and r["fan_state"] is None:
        checks.append(Check("fan", "warning", f"no active cooler found ({root / FAN_HWMON})",
                            "fit the Raspberry Pi Active Cooler; without it long restoration runs will throttle"
                            if on_pi else pc))
    else:
        checks.append(Check("fan", "ok", f"cooler state {r['fan_state']}, pwm {r['fan_pwm']}, {r['fan_rpm']} rpm "
                                         f"(the tachometer may read 0 at mid duty)"))
    if r["under_voltage"] is None:
        checks.append(Check("power", "warning", "throttle flags unavailable (no get_throttled, no vcgencmd)",
                            f"sudo apt install raspi-utils (vcgencmd; {INSTALLER} does)" if on_pi else pc))
    elif r["under_voltage"]:
        checks.append(Check("power", "failed", f"under-voltage now (flags {r['throttled_raw']})",
                            "use the official 5 V / 5 A USB-C power supply"))
    elif r["under_voltage_occurred"] or r["throttled_occurred"]:
        checks.append(Check("power", "warning", f"under-voltage or throttling has occurred since boot "
                                                f"(flags {r['throttled_raw']})", "check the power supply and cooling"))
    else:
        checks.append(Check("power", "ok", f"no under-voltage or throttling since boot (flags {r['throttled_raw']})"))
    return checks


def check_models(cfg: ModelsConfig, on_pi: bool = False) -> list[Check]:
    """The pack's manifest, and every model file of the configured precision against its sha256."""
    pack_dir = cfg.pack_dir
    try:
        manifest = load_manifest(pack_dir)
        for entry in manifest.models.values():
            if cfg.precision == "int8":
                verify_file(pack_dir, entry.file, entry.sha256)
            else:
                verify_file(pack_dir, entry.float_file, entry.float_sha256)
    except PackError as exc:
        fix = (f"{INSTALLER} reinstalls the models in /opt/deblurd/models" if on_pi else
               f"python -m tools.train.export --pack {cfg.pack} rebuilds it from its training runs "
               "(or git checkout models/)")
        return [Check("models", "failed", _cause(str(exc)), f"{fix}; or set models.dir / models.pack in the config",
                      "models.pack", ExitCode.NOINPUT)]
    return [Check("models", "ok", f"pack {manifest.name} v{manifest.version} in {pack_dir}: "
                                  f"{len(manifest.models)} {cfg.precision} models match their checksums")]


def _cause(message: str) -> str:
    """A PackError's cause without its generic fix (`(reinstall ...)`, `; reinstall ...`): the check gives the fix
    that fits where it runs."""
    for mark in (" (set models.dir", " (reinstall", "; reinstall", "; re-export"):
        message = message.split(mark)[0]
    return message


def check_runtime(cfg: ModelsConfig, on_pi: bool = False) -> list[Check]:
    from deblurd.restore.inference import interpreter_class

    try:
        _, name = interpreter_class(cfg.runtime)
    except PackError as exc:
        fix = f"{INSTALLER} installs ai-edge-litert" if on_pi else "pip install ai-edge-litert (make run does)"
        return [Check("tflite", "failed", str(exc), fix)]
    try:
        version = metadata.version(RUNTIME_DISTRIBUTIONS[name])
    except metadata.PackageNotFoundError:
        version = "version unknown"
    kernels = _int8_kernels(cfg)
    if kernels == "builtin":
        return [Check("tflite", "warning", f"{name} {version} runs int8 on TFLite's builtin kernels: XNNPACK could "
                      "not read the CPU, so every model runs 4-25x slower and rounds differently from the tested "
                      "path", "give the service a readable /proc/cpuinfo and /sys/devices/system/cpu (a container "
                      "or chroot must mount them)")]
    return [Check("tflite", "ok", f"{name} {version}" + (f", int8 on {kernels}" if kernels == "xnnpack" else ""))]


def _int8_kernels(cfg: ModelsConfig) -> str | None:
    """Which kernels run the pack's first int8 model (TfliteModel.kernels), or None when it cannot be loaded
    (check_models says why) or the pack is float."""
    from deblurd.restore.tflite import TfliteModel

    if cfg.precision != "int8":
        return None
    try:
        entry = next(iter(load_manifest(cfg.pack_dir).models.values()))
        return TfliteModel(cfg.pack_dir / entry.file, threads=1).kernels
    except (PackError, StopIteration):
        return None


def _nearest_existing(path: Path) -> Path:
    while not os.path.exists(path) and path != path.parent:
        path = path.parent
    return path


def _uncreatable(path: Path, kind: Literal["folder", "file"]) -> str | None:
    """Why this user cannot create or write `path` (a folder, or a file in its folder), or None."""
    if os.path.exists(path):
        if path.is_dir() != (kind == "folder"):
            return f"{path} is {'a file' if kind == 'folder' else 'a folder'}, not a {kind}"
        folder = path if kind == "folder" else path.parent
    else:
        folder = _nearest_existing(path.parent)
        if not folder.is_dir():
            return f"{folder} is a file, so {path} cannot be created"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable by this user"
    return None


def check_output(cfg: OutputConfig, free_space: bool = True) -> list[Check]:
    """The output folder can be created and written (and, for doctor, has room above output.min_free_mb)."""
    problem = _uncreatable(cfg.dir, "folder")
    if problem:
        return [Check("output", "failed", f"{cfg.dir}: {problem}", "sudo chown -R deblurd: /var/lib/deblurd, or set "
                      "output.dir to a writable folder", "output.dir", ExitCode.CANTCREAT)]
    where = str(cfg.dir) + ("" if cfg.dir.exists() else " (created on first run)")
    if not free_space:
        return [Check("output", "ok", f"{where} writable")]
    free_mb = shutil.disk_usage(_nearest_existing(cfg.dir)).free / 2**20
    if free_mb < cfg.min_free_mb:
        return [Check("output", "failed", f"{where}: only {free_mb:.0f} MB free, below min_free_mb "
                                          f"{cfg.min_free_mb}", "free space, or lower output.keep_days")]
    level: Level = "warning" if free_mb < 4 * cfg.min_free_mb else "ok"
    return [Check("output", level, f"{where} writable, {free_mb:.0f} MB free",
                  "free some space soon" if level == "warning" else "")]


def check_state_file(cfg: Config) -> list[Check]:
    """A state file set apart from the output folder: its folder can be created and written."""
    if cfg.service.state_file is None:
        return []  # <output.dir>/status.json: check_output covers it
    problem = _uncreatable(cfg.service.state_file, "file")
    if problem:
        return [Check("state", "failed", f"{cfg.service.state_file}: {problem}", "set service.state_file to a file "
                      "in a folder this user can write, or remove it for <output.dir>/status.json",
                      "service.state_file", ExitCode.CANTCREAT)]
    return [Check("state", "ok", f"{cfg.service.state_file} writable")]


def config_checks(cfg: Config, on_pi: bool = False) -> list[Check]:
    """What `run` needs from the config before it starts, checked without starting it (`check-config`): the
    frame source's files, the model pack, the output folder, the state file, a configured lens profile."""
    from deblurd.capture.picamera_source import camera_present

    camera = cfg.camera
    replays = camera.source in ("replay", "sim") or (camera.source == "auto" and camera.replay_path is not None
                                                     and not camera_present())
    return ((check_source(camera) if replays else []) + check_models(cfg.models, on_pi)
            + check_output(cfg.output, free_space=False) + check_state_file(cfg)
            + (check_lens_profile(cfg) if cfg.lens.profile is not None else []))


def check_journald(on_pi: bool = False) -> list[Check]:
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        return [Check("journald", "warning", "systemd-python not importable: logs go to stderr (still journaled)",
                      f"sudo apt install python3-systemd ({INSTALLER} does)" if on_pi else
                      "pip install systemd-python, if deblurd runs under systemd here")]
    return [Check("journald", "ok", "systemd-python present")]


def diagnose(cfg: Config, on_pi: bool = False) -> list[Check]:
    return (check_camera(cfg, on_pi) + check_lens_profile(cfg) + check_gpio(cfg.gpio)
            + check_thermal(cfg.thermal.sysfs_root, on_pi)
            + check_models(cfg.models, on_pi) + check_runtime(cfg.models, on_pi) + check_output(cfg.output)
            + check_state_file(cfg)
            + check_journald(on_pi))


def summary(checks: list[Check]) -> str:
    """The last line: failures and warnings by name; 'all N checks passed' only when there are neither."""
    failed = [c.name for c in checks if c.level == "failed"]
    warned = [c.name for c in checks if c.level == "warning"]
    if not failed and not warned:
        return f"all {len(checks)} checks passed"
    parts = [f"{len(failed)} failed ({', '.join(failed)})" if failed else "0 failed",
             f"{len(warned)} warning{'' if len(warned) == 1 else 's'}" + (f" ({', '.join(warned)})" if warned else "")]
    return ", ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the checks as JSON: {checks: [{name, level, detail, fix}], failed, warnings, "
                             "summary}")


def run(args: argparse.Namespace) -> int:
    source = config_source(args.config)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        checks = [Check("config", "failed", str(exc), f"deblurd check-config {args.config or ''}".rstrip())]
    else:
        on_pi = running_on_pi(cfg)
        checks = [Check("config", "ok",
                        f"{source}; {'on a Raspberry Pi' if on_pi else 'not on a Raspberry Pi (fixes for a PC)'}")]
        checks += diagnose(cfg, on_pi)
    failed = sum(c.level == "failed" for c in checks)
    if args.json:
        print(json.dumps({"checks": [c.as_json() for c in checks], "failed": failed,
                          "warnings": sum(c.level == "warning" for c in checks), "summary": summary(checks)},
                         indent=1))
    else:
        for check in checks:
            print(check.render())
        print(summary(checks))
    return 1 if failed else 0
