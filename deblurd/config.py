"""Configuration: one pydantic model per area, loaded from TOML; defaults run on a developer machine with no camera."""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from deblurd.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/deblurd/deblurd.toml")
REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

DEFAULT_BUTTON_PIN = 17
MAX_IMAGE_MEGAPIXELS = 24.0
"""Default pixel limit: twice the camera's largest still, so a phone's or a camera's photo is taken too, and
what one image can cost in memory stays a fraction of a Pi 5's (see systemd/deblurd.service's MemoryMax)."""
PIXEL_LIMIT_KEY = "camera.max_image_megapixels"
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _plain_path(value: Any) -> Any:
    """A NUL byte would pass as a Path and crash `run` at its first file call, a newline would forge log lines,
    and "" would quietly mean the current folder."""
    text = str(value) if isinstance(value, (str, Path)) else None
    if text == "":
        raise ValueError("an empty path: leave the key out for its default")
    found = CONTROL_CHARACTERS.search(text or "")
    if found:
        raise ValueError(f"a path may not hold control characters (found {found.group()!r}): remove it")
    return value


FilePath = Annotated[Path, Strict(False), BeforeValidator(_plain_path)]
"""Paths are the one exception to strict types: TOML has no path type, so a string becomes a Path."""


class Area(BaseModel):
    """Strict: `"yes"` is not a bool nor `"800"` a number, so a quoted value is an error rather than a guess."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)


class CameraConfig(Area):
    """Where frames come from: the Camera Module 3, recorded images or video (replay), or a simulated camera."""

    source: Literal["auto", "picamera2", "replay", "sim"] = Field(
        "auto", description="frame source; auto = camera if present, else replay; sim = simulated")
    width: int = Field(640, ge=64, le=4608, description="continuous frame width in pixels")
    height: int = Field(480, ge=64, le=2592, description="continuous frame height in pixels")
    fps: float = Field(10.0, gt=0, le=60, description="target continuous frame rate")
    replay_path: FilePath | None = Field(
        None, description="folder of images or a video file to replay; unset = bundled samples")
    capture_timeout_s: float = Field(
        5.0, ge=0.5, le=60, description="seconds to wait for a frame before reopening the camera")
    reopen_backoff_max_s: float = Field(30.0, ge=1, le=600, description="longest wait between camera reopen attempts")
    sim_scene: FilePath | None = Field(
        None, description="sim: photo or folder of photos it looks at; unset = bundled sharp samples")
    sim_layout: Literal["plane", "layers"] = Field(
        "plane", description="sim: the subject is one plane, or a plane with nearer layers")
    sim_subject_dioptres: float = Field(
        0.5, ge=0.0, le=32.0, description="sim: nearness of the subject plane (1/m; 0.5 = 2 m)")
    sim_seed: int = Field(0, ge=0, le=2**31 - 1, description="sim: seeds the lens's imperfections and the sensor noise")
    sim_still_width: int = Field(
        1152, ge=64, le=4608, description="sim: width stills are rendered at (4608 = full resolution, slow)")
    max_image_megapixels: float = Field(
        MAX_IMAGE_MEGAPIXELS, ge=12.0, le=89.0,
        description="largest image decoded, in megapixels (at least 12: the camera's own stills are 11.9): replay "
                    "files, sim scenes, spooled stills and `deblurd deblur` inputs; read from the file's header before "
                    "decoding, so a larger one (a decompression bomb) is refused and costs no memory (at most 89, "
                    "Pillow's own warning limit)")

    @property
    def max_image_pixels(self) -> int:
        """max_image_megapixels as a pixel count, for image_io."""
        return int(self.max_image_megapixels * 1e6)


class LensConfig(Area):
    """The focus motor, and the lens profile that says how blurred each focus position leaves the scene."""

    mode: Literal["manual", "auto", "fixed"] = Field(
        "manual", description="manual = hold position_dioptres; auto = autofocus; fixed = leave the lens")
    position_dioptres: float = Field(
        0.0, ge=0.0, le=32.0, description="LensPosition in dioptres (1/m), clamped to the camera's range")
    profile: FilePath | None = Field(
        None, description="lens profile from `deblurd calibrate` (unset = lens-profile.json beside the state file)")
    subject_dioptres: float | None = Field(
        None, ge=0.0, le=32.0,
        description="nearness (1/m) of the scene plane in manual or fixed mode, so the lens profile's expected blur "
                    "there steers the blur map (unset = unknown: the map alone decides)")


class ModelsConfig(Area):
    """The model pack that classifies and restores frames, and the TFLite interpreter that runs it."""

    dir: FilePath = Field(REPO_MODELS_DIR, description="folder holding the model packs",
                          json_schema_extra={"default_text": "the models/ folder of the deblurd source tree"})
    pack: str = Field("photo", min_length=1, description="model pack name: a folder directly inside dir")
    runtime: Literal["auto", "ai-edge-litert", "tflite-runtime", "tensorflow"] = Field(
        "auto", description="TFLite interpreter to load")
    threads: int = Field(2, ge=1, le=8, description="interpreter threads")
    precision: Literal["int8", "float"] = Field("int8", description="which exported variant of each model to run")

    @field_validator("pack")
    @classmethod
    def _plain_name(cls, pack: str) -> str:
        """A pack is a folder name, never a path: `../..` would load models from outside dir."""
        if "/" in pack or "\\" in pack or pack in (".", "..") or CONTROL_CHARACTERS.search(pack):
            raise ValueError("must be a plain folder name inside models.dir (no '/', no '..', no control "
                             "characters): move the pack into models.dir, or point models.dir at its parent")
        return pack

    @property
    def pack_dir(self) -> Path:
        """The pack's folder: always directly inside dir, since pack is a plain name."""
        return self.dir / self.pack


class PipelineConfig(Area):
    """Queues between capture, restoration and storage."""

    queue_size: int = Field(4, ge=1, le=64, description="continuous frames buffered before the oldest is dropped")
    still_queue_size: int = Field(
        8, ge=1, le=64, description="button stills buffered (never dropped while room remains)")
    max_frames: int | None = Field(None, ge=1, description="stop after this many frames (unset = run until stopped)")


class OutputConfig(Area):
    """Where and how results are written, which continuous frames are kept, and how long."""

    dir: FilePath = Field(Path("deblurd-output"), description="folder results are written to")
    image_format: Literal["jpg", "png"] = Field("jpg", description="image file format")
    jpeg_quality: int = Field(92, ge=50, le=100, description="JPEG quality")
    save_input: bool = Field(True, description="also save the captured input beside the restored image")
    keep_days: int = Field(0, ge=0, le=3650, description="delete results older than this many days (0 = keep)")
    max_results: int = Field(0, ge=0, le=10_000_000, description="keep at most this many results (0 = no limit)")
    min_free_mb: int = Field(200, ge=0, le=1_000_000, description="free space kept on the output disk (MB)")
    min_free_prune_max: int = Field(1000, ge=0, le=10_000_000,
                                    description="most continuous results the free-space floor may remove per run")
    store_every: int = Field(1, ge=1, le=100_000, description="store every Nth continuous frame (stills: always)")
    max_per_minute: int = Field(
        2, ge=0, le=6000, description="store at most this many continuous frames a minute (0 = all)")
    min_change: float = Field(
        0.0, ge=0, le=255, description="skip a continuous frame differing less from the last stored")
    store_sharp: bool = Field(True, description="store continuous frames classified sharp")


class ThermalConfig(Area):
    """Temperature pacing, so that long runs slow down before the Pi throttles itself."""

    enabled: bool = Field(True, description="read temperatures and pace work")
    sysfs_root: FilePath = Field(
        Path("/"), description="root under which /sys paths are read (tests point this at a temp tree)")
    poll_interval_s: float = Field(2.0, ge=0.2, le=60, description="seconds between readings")
    slow_c: float = Field(75.0, ge=40, le=95, description="lower the frame rate from this temperature")
    pause_c: float = Field(80.0, ge=40, le=95, description="pause continuous work from this temperature")
    resume_c: float = Field(70.0, ge=30, le=95, description="resume continuous work below this temperature")
    critical_c: float = Field(85.0, ge=40, le=100, description="refuse even button stills from this temperature")
    slow_factor: float = Field(0.5, gt=0, lt=1, description="frame-rate multiplier while slow")

    @model_validator(mode="after")
    def _ordered(self) -> ThermalConfig:
        if not self.resume_c < self.slow_c <= self.pause_c < self.critical_c:
            raise ValueError(
                f"thresholds must satisfy resume_c < slow_c <= pause_c < critical_c, got "
                f"{self.resume_c} / {self.slow_c} / {self.pause_c} / {self.critical_c}"
            )
        return self


class GpioConfig(Area):
    """The capture button and the status LED on the Pi's header."""

    enabled: bool = Field(False, description="use the capture button and status LED")
    button_pin: int = Field(DEFAULT_BUTTON_PIN, ge=2, le=27, description="BCM GPIO number (2-27 on the 40-pin header)")
    led_pin: int | None = Field(None, ge=2, le=27, description="status LED BCM pin (unset = no LED)")
    bounce_s: float = Field(0.05, ge=0.0, le=1.0, description="button debounce time")
    long_press_s: float = Field(2.0, ge=0.3, le=30, description="hold this long to toggle continuous mode")
    press_queue_size: int = Field(8, ge=1, le=64, description="button presses waiting for a still")

    @model_validator(mode="after")
    def _distinct_pins(self) -> GpioConfig:
        if self.led_pin is not None and self.led_pin == self.button_pin:
            raise ValueError(f"led_pin and button_pin must differ, both are {self.button_pin}")
        return self


class ServiceConfig(Area):
    """The status file that `deblurd status` and `deblurd doctor` read."""

    state_file: FilePath | None = Field(
        None, description="status file read by `deblurd status` (unset = <output.dir>/status.json)")
    status_interval_s: float = Field(5.0, ge=0.5, le=600, description="seconds between status updates")


class LoggingConfig(Area):
    """How much is logged, and where."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    journald: Literal["auto", "on", "off"] = Field("auto", description="auto = journald when started by systemd")
    progress_s: float = Field(10.0, ge=0, le=3600, description="seconds between the daemon's progress lines "
                              "(frames in, stored, dropped, fps, temperature) when it runs on a terminal, not under "
                              "systemd; 0 = none")


class Config(Area):
    """The whole config: one area per TOML table."""

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

    def with_overrides(self, overrides: dict[str, Any], source: str = "command line") -> Config:
        """A validated copy with dotted keys replaced ({"output.dir": ...}), so flags obey the config's ranges."""
        data = self.model_dump()
        for key, value in overrides.items():
            area, name = key.split(".", 1)
            data[area][name] = value
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(Path(source), exc)) from exc


def _range(info: FieldInfo) -> str:
    """'64 to 4608' for a numeric field with bounds, else ''."""
    bounds = {k: getattr(m, k) for m in info.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    if not bounds:
        return ""
    low = f"{bounds['ge']}" if "ge" in bounds else f"more than {bounds['gt']}" if "gt" in bounds else "any"
    if "le" not in bounds and "lt" not in bounds:
        return f"{low} or more" if "ge" in bounds else low
    high = f"{bounds['le']}" if "le" in bounds else f"less than {bounds['lt']}" if "lt" in bounds else "any"
    return f"{low} to {high}"


def _allowed_range(loc: tuple) -> str:
    """' (allowed: 64 to 4608)' for a numeric field with bounds, so an error shows the whole range."""
    model: Any = Config
    info: FieldInfo | None = None
    for part in loc:
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return ""
        info = fields[part]
        model = info.annotation
    allowed = _range(info) if info is not None else ""
    return f" (allowed: {allowed})" if allowed else ""


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


def config_source(path: Path | None = None) -> str:
    """What load_config(path) reads, for messages: the file, or the built-in defaults when no file is there."""
    if path is not None or DEFAULT_CONFIG_PATH.exists():
        return str(path or DEFAULT_CONFIG_PATH)
    return f"built-in defaults (no {DEFAULT_CONFIG_PATH})"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help=f"config file (default {DEFAULT_CONFIG_PATH}; built-in defaults when it is absent)")


def load_config(path: Path | None = None) -> Config:
    """Load and validate a TOML config; no path and no default file means the built-in defaults."""
    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
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


KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", Path: "a path"}


def _allowed(info: FieldInfo) -> str:
    """What a key accepts, for the reference: its type, and its choices or its range."""
    annotation: Any = info.annotation
    if get_origin(annotation) is not Literal:  # Optional[X] -> X, Annotated[X, ...] -> X
        annotation = next((a for a in get_args(annotation) if a is not type(None)), annotation)
        annotation = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(json.dumps(choice) for choice in get_args(annotation))
    allowed = _range(info)
    return KINDS.get(annotation, str(annotation)) + (f", {allowed}" if allowed else "")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def config_reference() -> str:
    """Every key at its default as commented TOML, generated from the models (`deblurd check-config --defaults`):
    the one reference, so that a default changed here changes the docs too."""
    lines = ["# deblurd configuration: every key at its default. A config file holds only the keys it changes;",
             "# a key left out keeps the default shown here. Check a file with `deblurd check-config FILE`."]
    for area_name, area_info in Config.model_fields.items():
        area: Any = area_info.annotation
        lines += ["", "", f"[{area_name}]", f"# {(area.__doc__ or '').strip()}"]
        for key, info in area.model_fields.items():
            default = info.get_default(call_default_factory=True)
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            shown = extra.get("default_text")
            lines.append(f"\n# {info.description} [{_allowed(info)}]")
            if shown:
                lines.append(f"# {key} = ...    (default: {shown})")
            elif default is None:
                lines.append(f"# {key} = ...    (unset by default)")
            else:
                lines.append(f"{key} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def config_as_toml(cfg: Config) -> str:
    """The effective config as TOML, each key followed by its description; unset optional keys are commented out."""
    lines = []
    for area_name in type(cfg).model_fields:
        area: Area = getattr(cfg, area_name)
        lines.append(f"\n[{area_name}]")
        for key, info in type(area).model_fields.items():
            value = getattr(area, key)
            setting = f"# {key} =" if value is None else f"{key} = {_toml_value(value)}"
            lines.append(f"{setting:<40} # {info.description or ''}".rstrip())
    return "\n".join(lines).lstrip("\n")
