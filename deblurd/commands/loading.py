"""What the working commands (`run`, `deblur`) load first: the config, logging as it says, and the model pack.

Its own module so that `cli` and the subcommand modules it registers share it without importing each other.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from deblurd.config import Config, config_source, load_config

log = logging.getLogger(__name__)


def load_command_config(args: argparse.Namespace) -> Config:
    """The config of --config, with -v / --log-level over its logging.level, and logging set up from it
    (journald under systemd, else stderr)."""
    from deblurd.daemon.service import setup_logging

    cfg = load_config(args.config)
    level = getattr(args, "log_level", None)
    if level is not None:
        cfg = cfg.with_overrides({"logging.level": level}, source="--log-level")
    setup_logging(cfg.logging)
    log.debug("config: %s; log level %s", config_source(args.config), cfg.logging.level)
    return cfg


def load_pack(cfg: Config) -> Any:
    """The configured model pack, verified; PackError names the file and the fix."""
    from deblurd.restore.inference import ModelPack

    return ModelPack.load(cfg.models.dir / cfg.models.pack, cfg.models.precision, cfg.models.runtime,
                          cfg.models.threads)
