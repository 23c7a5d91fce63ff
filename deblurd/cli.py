"""The `deblurd` command. Each subcommand is one entry in COMMANDS: a name, a one-line help, add_arguments and run.

A subcommand in its own module is registered with `module_command("name", "deblurd.module")`; the module
provides `add_arguments(parser)` and `run(args) -> int` and its docstring's first line is the help.
Errors become one message on stderr and a sysexits code: 78 bad config, 66 missing model pack,
73 output not writable, 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import cv2

from deblurd.camera_errors import CameraError
from deblurd.config import Area, Config, ConfigError, load_config
from deblurd.manifest import PackError
from deblurd.store import AtomicWriter, StoreError

log = logging.getLogger("deblurd")

EX_FAILURE = 1
EXIT_CODES = ((ConfigError, ConfigError.exit_code), (PackError, PackError.exit_code), (StoreError, StoreError.exit_code),
              (CameraError, CameraError.exit_code))


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def module_command(name: str, module: str) -> Command:
    """A subcommand implemented by a module with add_arguments(parser) and run(args) -> int."""
    mod = importlib.import_module(module)
    return Command(name, (mod.__doc__ or name).strip().splitlines()[0], mod.add_arguments, mod.run)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="config file (default /etc/deblurd/deblurd.toml; built-in defaults when it is absent)")


def _load(path: Optional[Path]) -> Config:
    """Load the config and set up logging from it (journald under systemd, else stderr)."""
    from deblurd.service import setup_logging

    cfg = load_config(path)
    setup_logging(cfg.logging)
    return cfg


def load_pack(cfg: Config) -> Any:
    """The configured model pack, verified; PackError names the file and the fix."""
    from deblurd.inference import ModelPack

    return ModelPack.load(cfg.models.dir / cfg.models.pack, cfg.models.precision, cfg.models.runtime,
                          cfg.models.threads)


# run -----------------------------------------------------------------------------------------------------------

def _run_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)
    parser.add_argument("--frames", type=int, metavar="N", help="stop after N frames (default: run until stopped)")
    parser.add_argument("--output", type=Path, metavar="DIR", help="write results here instead of output.dir")


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Each ends the daemon cleanly (final status "stopped", exit 0). SIGHUP does not reload the config: edit it,
check it with `deblurd check-config`, then restart the service."""


def _run(args: argparse.Namespace) -> int:
    from deblurd.sources import open_source
    from deblurd.pipeline import Pipeline
    from deblurd.service import SystemdNotifier
    from deblurd.store import ResultStore
    from deblurd.thermal import ThermalGovernor

    overrides = {"output.dir": args.output, "pipeline.max_frames": args.frames}
    cfg = _load(args.config).with_overrides({k: v for k, v in overrides.items() if v is not None})
    store = ResultStore(cfg.output)
    store.open()
    pack = load_pack(cfg)
    source = open_source(cfg.camera)
    parts: list[Any] = [source]
    try:
        led = None
        if cfg.gpio.enabled:
            from deblurd.gpio import CaptureButton, StatusLed

            led = StatusLed.from_config(cfg.gpio)
            parts.append(led)
        pipeline = Pipeline(source, pack, store, cfg, ThermalGovernor.from_config(cfg.thermal), SystemdNotifier(), led)
        if cfg.gpio.enabled:
            parts.append(CaptureButton.from_config(cfg.gpio, pipeline.request_still, pipeline.set_continuous))
        previous = {sig: signal.signal(sig, lambda signum, _: pipeline.stop(signal.Signals(signum).name))
                    for sig in STOP_SIGNALS}
        try:
            stats = pipeline.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        for part in reversed(parts):
            if part is not None:
                part.close()
    log.info("stopped after %d frame(s) (%s): %d stored in %s, dropped %s, not stored by the policy %s",
             stats.processed, pipeline.exit_reason, stats.frames_out, store.dir, stats.dropped or "none",
             stats.not_stored or "none")
    return 0


# deblur --------------------------------------------------------------------------------------------------------

class InputError(Exception):
    """One input image that cannot be processed; the others still are."""


def _deblur_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="JPEG or PNG files to restore")
    parser.add_argument("-o", "--output", type=Path, default=Path("deblurred"), metavar="DIR",
                        help="folder for the restored images (default ./deblurred)")
    parser.add_argument("--save-map", action="store_true",
                        help="also write <name>-map.png: the input tinted by the route of each region (blur map)")


def read_rgb(path: Path) -> Any:
    """An image file as RGB uint8; InputError says what is wrong with it."""
    if not path.is_file():
        raise InputError(f"{path}: no such file (check the path)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); copy it again from its source")
    try:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise InputError(f"{path}: cannot be decoded ({exc}); it is damaged or not a JPEG/PNG") from exc
    if bgr is None:
        raise InputError(f"{path}: cannot be read as an image; it is damaged, unreadable or not a JPEG/PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def unique_stems(paths: list[Path]) -> dict[Path, str]:
    """An output stem per input: its own name, with -2, -3... for later inputs of the same name, so that
    `deblur d1/a.jpg d2/a.jpg` never writes one result over another."""
    seen: dict[str, int] = {}
    stems = {}
    for path in paths:
        count = seen[path.stem] = seen.get(path.stem, 0) + 1
        stems[path] = path.stem if count == 1 else f"{path.stem}-{count}"
    return stems


def _deblur(args: argparse.Namespace) -> int:
    from deblurd.map_overlay import render
    from deblurd.router import Router
    from deblurd.store import encode_image

    cfg = _load(args.config)
    router = Router(load_pack(cfg))
    writer = AtomicWriter()
    try:
        args.output.mkdir(parents=True, exist_ok=True)
        writer.write(args.output / ".write-test", b"ok")
        (args.output / ".write-test").unlink()
    except OSError as exc:
        raise StoreError(f"output folder {args.output} is not writable ({exc.strerror or exc}): "
                         f"choose another folder with -o") from exc
    failed = 0
    stems = unique_stems(args.images)
    for path in args.images:
        try:
            rgb = read_rgb(path)
        except InputError as exc:
            print(f"deblurd: {exc}", file=sys.stderr)
            failed += 1
            continue
        severity, out = router.route(rgb)
        fmt = "png" if path.suffix.lower() == ".png" else "jpg"
        target = args.output / f"{stems[path]}-restored.{fmt}"
        writer.write(target, encode_image(out, fmt, cfg.output.jpeg_quality))
        note = "sharp, passed through" if severity.label == "sharp" else f"{severity.label} blur, restored"
        shares = ", ".join(f"{name} {share:.0%}" for name, share in severity.scores.items())
        print(f"{path}: {note} (blur map: {shares}) -> {target}")
        if args.save_map and severity.map is not None:
            overlay = args.output / f"{stems[path]}-map.png"
            writer.write(overlay, encode_image(render(rgb, severity.map), "png", cfg.output.jpeg_quality))
            print(f"{path}: blur map -> {overlay}")
    if failed:
        print(f"deblurd: {failed} of {len(args.images)} image(s) could not be processed (see above)", file=sys.stderr)
        return EX_FAILURE
    return 0


# check-config --------------------------------------------------------------------------------------------------

def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE", help="config file to check")
    _config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the effective config as JSON")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def config_as_toml(cfg: Config) -> str:
    """The effective config as TOML, each key followed by its title; unset optional keys are commented out."""
    lines = []
    for area_name in type(cfg).model_fields:
        area: Area = getattr(cfg, area_name)
        lines.append(f"\n[{area_name}]")
        for key, info in type(area).model_fields.items():
            value = getattr(area, key)
            setting = f"# {key} =" if value is None else f"{key} = {_toml_value(value)}"
            lines.append(f"{setting:<40} # {info.title or ''}".rstrip())
    return "\n".join(lines).lstrip("\n")


def _check_config(args: argparse.Namespace) -> int:
    path = args.file or args.config
    cfg = load_config(path)
    print(cfg.model_dump_json(indent=1) if args.json else config_as_toml(cfg))
    print(f"config OK ({path or 'built-in defaults, or /etc/deblurd/deblurd.toml if present'})", file=sys.stderr)
    return 0


COMMANDS: list[Command] = [
    Command("run", "run the daemon: capture, classify, restore and store until stopped", _run_arguments, _run),
    Command("deblur", "restore image files offline with the same models and routing", _deblur_arguments, _deblur),
    Command("check-config", "validate a config file and print the effective settings", _check_config_arguments,
            _check_config),
    module_command("status", "deblurd.status"),
    module_command("collect", "deblurd.collect"),
    module_command("doctor", "deblurd.doctor"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deblurd", description="On-device deblurring: capture, classify, restore, store.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(handler=command.run)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except (ConfigError, PackError, StoreError, CameraError) as exc:
        print(f"deblurd: {exc}", file=sys.stderr)
        return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))
    except KeyboardInterrupt:
        return 130
