"""pyproject.toml against the installer: the `pi` extra is what deploy/install.sh gives the Pi, the tflite-runtime
fallback installs every other dependency, and the license is an SPDX expression."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

import deblurd

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
INSTALLER = (REPO / "deploy" / "install.sh").read_text()
APT_NAMES = {"gpiozero": "python3-gpiozero", "lgpio": "python3-lgpio", "systemd-python": "python3-systemd"}
"""A distribution of the pi extra -> the Debian package install.sh takes it from."""


def _apt_packages() -> set[str]:
    block = re.search(r"APT_PACKAGES=\(([^)]*)\)", INSTALLER)
    assert block, "install.sh lists its apt packages in APT_PACKAGES=(...)"
    return set(block.group(1).split())


def test_the_pi_extra_is_what_the_installer_takes_from_apt():
    pi = [Requirement(r).name for r in PYPROJECT["project"]["optional-dependencies"]["pi"]]
    assert "picamera2" not in pi, "picamera2 comes from apt (python3-picamera2); pip builds of it do not work"
    assert {"python3-picamera2", "python3-libcamera"} <= _apt_packages()
    assert set(pi) == set(APT_NAMES) and {APT_NAMES[name] for name in pi} <= _apt_packages()


def test_the_tflite_runtime_fallback_installs_every_other_dependency():
    fallback = next(line for line in INSTALLER.splitlines() if "tflite-runtime" in line and '"${pip[@]}"' in line)
    installed = {Requirement(token.strip('"')).name for token in fallback.split()[3:]}
    core = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]} - {"ai-edge-litert", "numpy"}
    assert core <= installed, f"install.sh's fallback (--no-deps) misses {core - installed}"


def test_spdx_license_and_a_setuptools_that_reads_it():
    assert PYPROJECT["project"]["license"] == "MIT"
    (backend,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert backend.name == "setuptools" and backend.specifier.contains("77") and not backend.specifier.contains("76")


def test_one_version():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "deblurd.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", deblurd.__version__)
