"""The `deblurd` command. Each subcommand is one entry in COMMANDS: a name, a one-line help, add_arguments and run.

A subcommand in its own module is registered with `module_command("name", "deblurd.module")`; the module
provides `add_arguments(parser)` and `run(args) -> int`, its docstring's first line is the help, and an optional
EXAMPLES string ends its --help. A DeblurdError becomes one message on stderr and its exit code (deblurd.errors).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from deblurd import __version__
from deblurd.commands.loading import load_command_config, load_pack
from deblurd.config import (
    LoggingConfig,
    add_config_argument,
    config_as_toml,
    config_reference,
    config_source,
    load_config,
)
from deblurd.errors import EXIT_CODES, ConfigError, DeblurdError, ExitCode

log = logging.getLogger("deblurd")



@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    examples: str = ""


def module_command(name: str, module: str) -> Command:
    """A subcommand implemented by a module with add_arguments(parser) and run(args) -> int."""
    mod = importlib.import_module(module)
    return Command(name, (mod.__doc__ or name).strip().splitlines()[0], mod.add_arguments, mod.run,
                   getattr(mod, "EXAMPLES", ""))


def _positive_int(text: str) -> int:
    """An argparse type, so that a wrong count names its flag (`--frames 0`), not the config key behind it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


# run -----------------------------------------------------------------------------------------------------------

RUN_EXAMPLES = """examples:
  deblurd run                                  until Ctrl-C or SIGTERM, with /etc/deblurd/deblurd.toml or the defaults
  deblurd run --frames 12 --output /tmp/out    12 frames into another folder, then stop
  deblurd -v run --config my.toml              with debug logging
"""


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--frames", type=_positive_int, metavar="N",
                        help="stop after N frames (default: run until stopped)")
    parser.add_argument("--output", type=Path, metavar="DIR", help="write results here instead of output.dir")


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Each ends the daemon cleanly (final status "stopped", exit 0). SIGHUP does not reload the config: edit it,
check it with `deblurd check-config`, then restart the service. SIGUSR1 (from `deblurd still`) only says that a
press record waits in the spool."""


def _run(args: argparse.Namespace) -> int:
    """Stop signals are held from the start (a signal before the pipeline exists, while the pack loads, is acted on
    once it does: the pipeline stops at once and writes its final status), then each stops the pipeline."""
    held: list[int] = args.held_signals
    previous = {sig: signal.signal(sig, lambda signum, _: held.append(signum)) for sig in STOP_SIGNALS}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # `deblurd still`: never fatal
    try:
        return _run_daemon(args, held)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_daemon(args: argparse.Namespace, held: list[int]) -> int:
    from deblurd.capture.sources import open_source
    from deblurd.daemon.pipeline import Pipeline
    from deblurd.daemon.service import SystemdNotifier
    from deblurd.daemon.thermal import ThermalGovernor
    from deblurd.optics.lens_profile import LensProfileError, daemon_profile
    from deblurd.output.store import ResultStore

    overrides = {"output.dir": args.output, "pipeline.max_frames": args.frames}
    cfg = load_command_config(args).with_overrides({k: v for k, v in overrides.items() if v is not None})
    store = ResultStore(cfg.output)
    store.open()
    pack = load_pack(cfg)
    try:
        lens_profile = daemon_profile(cfg.state_file, cfg.lens.profile)
    except LensProfileError as exc:
        raise ConfigError(f"lens.profile: {exc}, or empty lens.profile to run without one") from None
    source = open_source(cfg.camera)
    parts: list[Any] = [source]
    try:
        led = None
        if cfg.gpio.enabled:
            from deblurd.daemon.gpio import CaptureButton, StatusLed

            led = StatusLed.from_config(cfg.gpio)
            parts.append(led)
        pipeline = Pipeline(source, pack, store, cfg, ThermalGovernor.from_config(cfg.thermal), SystemdNotifier(), led,
                            lens_profile=lens_profile)
        if cfg.gpio.enabled:
            parts.append(CaptureButton.from_config(cfg.gpio, pipeline.request_still, pipeline.set_continuous))
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda signum, _: pipeline.stop(signal.Signals(signum).name))
        signal.signal(signal.SIGUSR1, lambda *_: pipeline.poke())
        for signum in held:
            pipeline.stop(signal.Signals(signum).name)
        pipeline.run()
    finally:
        for part in reversed(parts):
            if part is not None:
                part.close()
    return 0  # the pipeline has logged where every frame went (status_report.stop_line)


# check-config --------------------------------------------------------------------------------------------------

CHECK_CONFIG_EXAMPLES = """examples:
  deblurd check-config                             the file deblurd reads (or the defaults), every key explained
  deblurd check-config /etc/deblurd/deblurd.toml   after an edit, before `sudo systemctl restart deblurd`
  deblurd check-config my.toml --json
  deblurd check-config --defaults                  every key at its default, with what it accepts
"""
REFERENCE_DOC = Path("docs/configuration.md")
REFERENCE_INTRO = """# Configuration reference

deblurd reads `/etc/deblurd/deblurd.toml` (or the file given with `--config`); a file holds only the keys it
changes, and every other key keeps the default below. `deploy/deblurd.toml` is the Pi's file: only what differs
there. Check a file with `deblurd check-config FILE`, which also checks what `run` will need (the frame source's
files, the model pack, the output folder, the state file, a configured lens profile).
"""
REFERENCE_BEGIN = ("<!-- BEGIN generated reference: this whole page is written by `python -m deblurd check-config "
                   f"--defaults --markdown > {REFERENCE_DOC}`; edit the descriptions in deblurd/config.py -->")
REFERENCE_END = "<!-- END generated reference -->"


def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE", help="config file to check")
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the effective config as JSON")
    parser.add_argument("--defaults", action="store_true",
                        help="print every key at its default as commented TOML (the reference), and check nothing")
    parser.add_argument("--markdown", action="store_true",
                        help=f"with --defaults: print {REFERENCE_DOC} (regenerate it with > {REFERENCE_DOC})")


def reference_markdown() -> str:
    """docs/configuration.md: the intro and the generated reference, so that the page cannot drift."""
    return f"{REFERENCE_INTRO}\n{REFERENCE_BEGIN}\n```toml\n{config_reference()}```\n{REFERENCE_END}\n"


def _check_config(args: argparse.Namespace) -> int:
    """Print the effective settings; then check what `run` will need from them (deblurd.commands.doctor's
    config_checks), since a missing replay folder or pack would only stop the service at its start. Exits with
    the code `run` would end with: 78 for a path the config names wrongly, 66 for the pack, 73 for the output."""
    from deblurd.commands.doctor import config_checks, running_on_pi

    if args.markdown and not args.defaults:
        raise DeblurdError("--markdown goes with --defaults", ExitCode.USAGE)
    if args.defaults:
        print(reference_markdown() if args.markdown else config_reference(), end="")
        return 0
    path = args.file or args.config
    cfg = load_config(path)
    print(cfg.model_dump_json(indent=1) if args.json else config_as_toml(cfg))
    checks = config_checks(cfg, running_on_pi(cfg))
    source = config_source(path)
    for check in checks:
        if check.level != "ok":
            print(f"deblurd: {source}: {check.message}" + (f"\n  fix: {check.fix}" if check.fix else ""),
                  file=sys.stderr)
    failed = [c for c in checks if c.level == "failed"]
    if failed:
        return failed[0].exit_code
    models = next(c.detail for c in checks if c.name == "models")
    print(f"config OK: {source}; {models}", file=sys.stderr)
    return 0


COMMANDS: list[Command] = [
    Command("run", "run the daemon: capture, classify, restore and store until stopped", _run_arguments, _run,
            RUN_EXAMPLES),
    module_command("deblur", "deblurd.commands.deblur"),
    Command("check-config", "validate a config file, check what `run` will need and print the effective settings",
            _check_config_arguments, _check_config, CHECK_CONFIG_EXAMPLES),
    module_command("status", "deblurd.commands.status"),
    module_command("still", "deblurd.commands.still"),
    module_command("collect", "deblurd.commands.collect"),
    module_command("calibrate", "deblurd.commands.calibrate"),
    module_command("doctor", "deblurd.commands.doctor"),
]


EXAMPLES = """examples:
  deblurd run --frames 12                        12 frames from the camera (or the bundled samples), then stop
  deblurd deblur photo.jpg shots/ -o restored/   restore image files you already have
  deblurd status                                 what the running daemon is doing
  deblurd doctor                                 check the installation, with a fix for each problem
  deblurd COMMAND --help                         a command's options and examples

exit codes:
""" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()) + "\n"
LOG_LEVELS = get_args(LoggingConfig.model_fields["level"].annotation)


def _logging_options(default: Any) -> argparse.ArgumentParser:
    """-v / --log-level, accepted before the command and after it (`deblurd -v run`, `deblurd run -v`)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", dest="log_level", action="store_const", const="DEBUG", default=default,
                       help="log debug messages too (the same as --log-level DEBUG)")
    group.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=default,
                       help="log level, over the config's logging.level")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deblurd",
                                     description="On-device deblurring: capture, classify, restore, store.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[_logging_options(None)])
    parser.add_argument("--version", action="version", version=f"deblurd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help, epilog=command.examples,
                                    formatter_class=argparse.RawDescriptionHelpFormatter,
                                    parents=[_logging_options(argparse.SUPPRESS)])
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(handler=command.run)
    return parser


def _act_on_held(held: list[int]) -> int | None:
    """Give a command other than `run` the default signal handling back, and end it as a signal held while
    deblurd was starting asks: 130 for SIGINT, the default action (termination) for SIGTERM and SIGHUP."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    for signum in held:
        if signum == signal.SIGINT:
            return ExitCode.INTERRUPTED
        os.kill(os.getpid(), signum)
    return None


def main(argv: list[str] | None = None, held_signals: list[int] | None = None) -> int:
    """The `deblurd` command; held_signals are stop signals that arrived while it was starting (deblurd.__main__
    holds them from the first line and keeps adding to the list)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command == "deblur" and not any(e.startswith("-") for e in extra):
            args.images += extra  # images named after an option too: `deblurd deblur a.jpg -o out b.jpg`
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=args.log_level or logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.held_signals = held_signals if held_signals is not None else []
    if held_signals is not None and args.command != "run":
        interrupted = _act_on_held(held_signals)
        if interrupted is not None:
            return interrupted
    try:
        status = args.handler(args)
        sys.stdout.flush()  # here, so that a reader that has gone is caught below rather than at exit
        return status
    except DeblurdError as exc:
        print(f"deblurd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `deblurd doctor --json | head`: the reader has gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit must not fail again
        return 0
