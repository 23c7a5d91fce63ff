"""deploy/install.sh: shellcheck-clean, a dry run that only prints, and real runs under a temporary root."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from deblurd.config import Config, load_config

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "install.sh"


def install(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (.ci/run installs it)")
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_dry_run_under_a_root_prints_every_action_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = install("--dry-run", "--root", str(root))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for action in (f"+ install -m 0644 {REPO}/deploy/deblurd.toml {root}/etc/deblurd/deblurd.toml",
                   f"+ install -m 0644 {REPO}/systemd/deblurd.service {root}/etc/systemd/system/deblurd.service",
                   f"+ cp -a {REPO}/models {root}/opt/deblurd/models",
                   f"+ systemctl --root={root} enable deblurd.service"):
        assert action in out
    assert "skipped under --root: apt-get install" in out
    assert not root.exists()


def test_dry_run_on_the_system_prints_the_pi_steps_and_runs_none() -> None:
    existed = Path("/opt/deblurd").exists()
    result = install("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "apt-get install -y --no-install-recommends python3-venv" in out
    for package in ("python3-picamera2", "python3-systemd", "python3-gpiozero", "python3-lgpio"):
        assert package in out
    assert "--constraint /opt/deblurd/constraints.txt ai-edge-litert" in out
    assert "systemctl enable deblurd.service" in out and "systemctl start deblurd.service" in out
    assert "runuser -u deblurd -- /opt/deblurd/venv/bin/deblurd doctor --config /etc/deblurd/deblurd.toml" in out
    if not existed:
        assert "python3 -m venv --system-site-packages /opt/deblurd/venv" in out
        assert not Path("/opt/deblurd").exists()


def test_install_is_idempotent_keeps_an_edited_config_and_uninstalls(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = install("--root", str(root))
    assert first.returncode == 0, first.stdout + first.stderr
    conf = root / "etc/deblurd/deblurd.toml"
    assert conf.read_bytes() == (REPO / "deploy/deblurd.toml").read_bytes()
    assert (root / "etc/systemd/system/multi-user.target.wants/deblurd.service").is_symlink()
    assert (root / "opt/deblurd/models/photo/manifest.json").is_file()

    again = install("--root", str(root))
    assert again.returncode == 0 and "config unchanged" in again.stdout

    conf.write_text(conf.read_text().replace("keep_days = 30", "keep_days = 7"))
    third = install("--root", str(root))
    assert third.returncode == 0 and "keeping your edited" in third.stdout
    assert "keep_days = 7" in conf.read_text() and (root / "etc/deblurd/deblurd.toml.new").is_file()

    removed = install("--root", str(root), "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not (root / "opt/deblurd").exists() and not (root / "etc/systemd/system/deblurd.service").exists()
    assert conf.is_file()  # the user's config and results stay
    purged = install("--root", str(root), "--uninstall", "--purge")
    assert purged.returncode == 0 and not (root / "etc/deblurd").exists()


def test_shipped_config_is_valid_for_the_pi() -> None:
    cfg = load_config(REPO / "deploy" / "deblurd.toml")
    assert cfg.gpio.enabled and (cfg.gpio.button_pin, cfg.gpio.led_pin) == (17, 27)
    assert str(cfg.output.dir) == "/var/lib/deblurd/output" and str(cfg.models.dir) == "/opt/deblurd/models"
    assert cfg.camera.source == "auto"


def test_shipped_config_restates_no_default() -> None:
    """A default changed in deblurd/config.py must reach an installed Pi: the Pi's file holds only what differs."""
    shipped = tomllib.loads((REPO / "deploy" / "deblurd.toml").read_text())
    defaults = Config()
    restated = [f"{area}.{key} = {value!r}" for area, keys in shipped.items() for key, value in keys.items()
                if Config.model_validate({area: {key: value}}) == defaults]
    assert not restated, f"deploy/deblurd.toml restates defaults (remove them): {', '.join(restated)}"
    assert sum(len(keys) for keys in shipped.values()) >= 7, "the Pi's differences are all there"


def test_bad_option_is_refused() -> None:
    result = install("--frobnicate")
    assert result.returncode == 2 and "unknown option" in result.stderr
