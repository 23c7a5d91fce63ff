"""Configuration: one pydantic model per area, loaded from TOML; defaults run on a developer machine with no camera."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator
from deblurd.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/deblurd/deblurd.toml")
REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

DEFAULT_BUTTON_PIN = 17
FilePath = Annotated[Path, Strict(False)]
"""Paths are the one exception to strict types: TOML has no path type, so a string becomes a Path."""


class Area(BaseModel):
    """Strict: `"yes"` is not a bool nor `"800"` a number, so a quoted value is an error rather than a guess."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)


class CameraConfig(Area):
    source: Literal["auto", "picamera2", "replay", "sim"] = Field("auto", title="frame source; auto = camera if present, else replay; sim = simulated")
    width: int = Field(640, ge=64, le=4608, title="continuous frame width in pixels")
    height: int = Field(480, ge=64, le=2592, title="continuous frame height in pixels")
    fps: float = Field(10.0, gt=0, le=60, title="target continuous frame rate")
    replay_path: Optional[FilePath] = Field(None, title="folder of images or a video file to replay; empty = bundled samples")
    capture_timeout_s: float = Field(5.0, ge=0.5, le=60, title="seconds to wait for a frame before reopening the camera")
    reopen_backoff_max_s: float = Field(30.0, ge=1, le=600, title="longest wait between camera reopen attempts")
    sim_scene: Optional[FilePath] = Field(None, title="sim: photo or folder of photos it looks at; empty = bundled sharp samples")
    sim_layout: Literal["plane", "layers"] = Field("plane", title="sim: the subject is one plane, or a plane with nearer layers")
    sim_subject_dioptres: float = Field(0.5, ge=0.0, le=32.0, title="sim: nearness of the subject plane (1/m; 0.5 = 2 m)")
    sim_seed: int = Field(0, ge=0, le=2**31 - 1, title="sim: seeds the lens's imperfections and the sensor noise")
    sim_still_width: int = Field(1152, ge=64, le=4608, title="sim: width stills are rendered at (4608 = full resolution, slow)")


class LensConfig(Area):
    mode: Literal["manual", "auto", "fixed"] = Field("manual", title="manual = hold position_dioptres; auto = autofocus; fixed = leave the lens")
    position_dioptres: float = Field(0.0, ge=0.0, le=32.0, title="LensPosition in dioptres (1/m), clamped to the camera's range")
    profile: Optional[FilePath] = Field(None, title="lens profile from `deblurd calibrate` (empty = lens-profile.json beside the state file)")
    subject_dioptres: Optional[float] = Field(None, ge=0.0, le=32.0, title="nearness (1/m) of the scene plane in manual or fixed mode, so the lens profile's expected blur there steers the blur map (empty = unknown: the map alone decides)")


class ModelsConfig(Area):
    dir: FilePath = Field(REPO_MODELS_DIR, title="folder holding the model packs")
    pack: str = Field("photo", min_length=1, title="model pack name, a sub-folder of dir")
    runtime: Literal["auto", "ai-edge-litert", "tflite-runtime", "tensorflow"] = Field("auto", title="TFLite interpreter to load")
    threads: int = Field(2, ge=1, le=8, title="interpreter threads")
    precision: Literal["int8", "float"] = Field("int8", title="which exported variant of each model to run")


class PipelineConfig(Area):
    queue_size: int = Field(4, ge=1, le=64, title="continuous frames buffered before the oldest is dropped")
    still_queue_size: int = Field(8, ge=1, le=64, title="button stills buffered (never dropped while room remains)")
    max_frames: Optional[int] = Field(None, ge=1, title="stop after this many frames (empty = run until stopped)")


class OutputConfig(Area):
    dir: FilePath = Field(Path("deblurd-output"), title="folder results are written to")
    image_format: Literal["jpg", "png"] = Field("jpg", title="image file format")
    jpeg_quality: int = Field(92, ge=50, le=100, title="JPEG quality")
    save_input: bool = Field(True, title="also save the captured input beside the restored image")
    keep_days: int = Field(0, ge=0, le=3650, title="delete results older than this many days (0 = keep)")
    max_results: int = Field(0, ge=0, le=10_000_000, title="keep at most this many results (0 = no limit)")
    min_free_mb: int = Field(200, ge=0, le=1_000_000, title="free space kept on the output disk (MB)")
    min_free_prune_max: int = Field(1000, ge=0, le=10_000_000,
                                    title="most continuous results the free-space floor may remove per run")
    store_every: int = Field(1, ge=1, le=100_000, title="store every Nth continuous frame (stills: always)")
    max_per_minute: int = Field(2, ge=0, le=6000, title="store at most this many continuous frames a minute (0 = all)")
    min_change: float = Field(0.0, ge=0, le=255, title="skip a continuous frame differing less from the last stored")
    store_sharp: bool = Field(True, title="store continuous frames classified sharp")


class ThermalConfig(Area):
    enabled: bool = Field(True, title="read temperatures and pace work")
    sysfs_root: FilePath = Field(Path("/"), title="root under which /sys paths are read (tests point this at a temp tree)")
    poll_interval_s: float = Field(2.0, ge=0.2, le=60, title="seconds between readings")
    slow_c: float = Field(75.0, ge=40, le=95, title="lower the frame rate from this temperature")
    pause_c: float = Field(80.0, ge=40, le=95, title="pause continuous work from this temperature")
    resume_c: float = Field(70.0, ge=30, le=95, title="resume continuous work below this temperature")
    critical_c: float = Field(85.0, ge=40, le=100, title="refuse even button stills from this temperature")
    slow_factor: float = Field(0.5, gt=0, lt=1, title="frame-rate multiplier while slow")

    @model_validator(mode="after")
    def _ordered(self) -> "ThermalConfig":
        if not self.resume_c < self.slow_c <= self.pause_c < self.critical_c:
            raise ValueError(
                f"thresholds must satisfy resume_c < slow_c <= pause_c < critical_c, got "
                f"{self.resume_c} / {self.slow_c} / {self.pause_c} / {self.critical_c}"
            )
        return self


class GpioConfig(Area):
    enabled: bool = Field(False, title="use the capture button and status LED")
    button_pin: int = Field(DEFAULT_BUTTON_PIN, ge=2, le=27, title="BCM GPIO number (2-27 on the 40-pin header)")
    led_pin: Optional[int] = Field(None, ge=2, le=27, title="status LED BCM pin (empty = no LED)")
    bounce_s: float = Field(0.05, ge=0.0, le=1.0, title="button debounce time")
    long_press_s: float = Field(2.0, ge=0.3, le=30, title="hold this long to toggle continuous mode")
    press_queue_size: int = Field(8, ge=1, le=64, title="button presses waiting for a still")

    @model_validator(mode="after")
    def _distinct_pins(self) -> "GpioConfig":
        if self.led_pin is not None and self.led_pin == self.button_pin:
            raise ValueError(f"led_pin and button_pin must differ, both are {self.button_pin}")
        return self


class ServiceConfig(Area):
    state_file: Optional[FilePath] = Field(None, title="status file read by `deblurd status` (empty = <output.dir>/status.json)")
    status_interval_s: float = Field(5.0, ge=0.5, le=600, title="seconds between status updates")


class LoggingConfig(Area):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", title="log level")
    journald: Literal["auto", "on", "off"] = Field("auto", title="auto = journald when started by systemd")


class Config(Area):
    camera: CameraConfig = CameraConfig()
    lens: LensConfig = LensConfig()
    models: ModelsConfig = ModelsConfig()
    pipeline: PipelineConfig = PipelineConfig()
    output: OutputConfig = OutputConfig()
    thermal: ThermalConfig = ThermalConfig()
    gpio: GpioConfig = GpioConfig()
    service: ServiceConfig = ServiceConfig()
    logging: LoggingConfig = LoggingConfig()

    @property
    def state_file(self) -> Path:
        return self.service.state_file or self.output.dir / "status.json"

    def with_overrides(self, overrides: dict[str, Any], source: str = "command line") -> "Config":
        """A validated copy with dotted keys replaced ({"output.dir": ...}), so flags obey the config's ranges."""
        data = self.model_dump()
        for key, value in overrides.items():
            area, name = key.split(".", 1)
            data[area][name] = value
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(Path(source), exc)) from exc


def _allowed_range(loc: tuple) -> str:
    """'allowed: 64 to 4608' for a numeric field with bounds, so an error shows the whole range."""
    model, info = Config, None
    for part in loc:
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return ""
        info = fields[part]
        model = info.annotation
    bounds = {k: getattr(m, k) for m in (info.metadata if info else []) for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    if not bounds:
        return ""
    low = f"{bounds['ge']}" if "ge" in bounds else f"more than {bounds['gt']}" if "gt" in bounds else "any"
    high = f"{bounds['le']}" if "le" in bounds else f"less than {bounds['lt']}" if "lt" in bounds else "any"
    return f" (allowed: {low} to {high})"


TYPE_HINTS = {"bool_type": " (write true or false, without quotes)",
              "int_type": " (write a whole number, without quotes)",
              "float_type": " (write a number, without quotes)",
              "string_type": " (write text in double quotes)",
              "path_type": " (write a path in double quotes)"}
"""What to write instead, for a value of the wrong type (the config is strict: nothing is coerced)."""


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: {err.error_count()} invalid setting(s):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (check its spelling; see `deblurd check-config` for the valid keys)")
        else:
            hint = TYPE_HINTS.get(e["type"], "")
            lines.append(f"  {key} = {e.get('input')!r}: {e['msg']}{hint}{_allowed_range(e['loc'])}")
    return "\n".join(lines)


def config_source(path: Optional[Path] = None) -> str:
    """What load_config(path) reads, for messages: the file, or the built-in defaults when no file is there."""
    if path is not None or DEFAULT_CONFIG_PATH.exists():
        return str(path or DEFAULT_CONFIG_PATH)
    return f"built-in defaults (no {DEFAULT_CONFIG_PATH})"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help=f"config file (default {DEFAULT_CONFIG_PATH}; built-in defaults when it is absent)")


def load_config(path: Optional[Path] = None) -> Config:
    """Load and validate a TOML config; no path and no default file means the built-in defaults."""
    explicit = path is not None
    path = Path(path) if explicit else DEFAULT_CONFIG_PATH
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: config file not found (check the path, or omit --config to use the defaults)")
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc} (fix the syntax at that line)") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from exc
