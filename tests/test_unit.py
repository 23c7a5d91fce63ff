"""The systemd unit: `systemd-analyze verify` accepts it and `systemd-analyze security` rates it 3.0 or safer."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "deblurd.service"
MAX_EXPOSURE = 3.0

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze not installed (.ci/run installs systemd)")


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointed at an executable that exists here, since verify checks it."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/deblurd/venv/bin/deblurd run --config /etc/deblurd/deblurd.toml" in text
    path = tmp_path / "deblurd.service"
    path.write_text(text.replace("/opt/deblurd/venv/bin/deblurd", sys.executable))
    return path


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_has_the_required_settings() -> None:
    d = directives()
    expected = {"Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "RestartPreventExitStatus": "78",
                "User": "deblurd", "SupplementaryGroups": "video gpio", "StateDirectory": "deblurd",
                "ConfigurationDirectory": "deblurd", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                "RestrictAddressFamilies": "AF_UNIX AF_NETLINK", "DevicePolicy": "closed", "CapabilityBoundingSet": ""}
    for key, value in expected.items():
        assert d.get(key) == [value], key
    assert int(d["WatchdogSec"][0]) > 0
    allowed = " ".join(d["DeviceAllow"])
    for device in ("char-video4linux", "char-media", "char-dma_heap", "char-gpiochip"):
        assert device in allowed


@needs_systemd_analyze
def test_systemd_analyze_verify(unit_copy: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", str(unit_copy)], capture_output=True, text=True,
                            timeout=60)
    problems = [line for line in result.stderr.splitlines() if "deblurd.service" in line]
    assert result.returncode == 0 and problems == [], result.stderr


@needs_systemd_analyze
def test_systemd_analyze_security_exposure(unit_copy: Path) -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit_copy)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for deblurd\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_bounds_memory_and_keeps_results_from_other_users() -> None:
    d = directives()
    memory = d["MemoryMax"][0]
    assert re.fullmatch(r"\d+[MG]", memory), memory
    megabytes = int(memory[:-1]) * (1024 if memory.endswith("G") else 1)
    assert 600 <= megabytes <= 1536, "above 8 queued stills (274 MB at 12 MP), below half a 4 GB Pi"
    assert d["UMask"] == ["0027"], "results are not world-readable"
    docs = (UNIT.parent.parent / "docs" / "operations.md").read_text()
    assert "adduser pi deblurd" in docs, "the copy recipe says how its user gets read access"
