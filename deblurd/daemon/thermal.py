"""Thermal watchdog: read the SoC temperature, the active cooler and the firmware throttle flags, and decide
how hard the daemon may work (normal / slow / pause / critical) with hysteresis so it does not flap."""

from __future__ import annotations

import glob
import logging
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deblurd.config import ThermalConfig
from deblurd.daemon.hooks import ModeRules

log = logging.getLogger(__name__)

ThermalMode = Literal["normal", "slow", "pause", "critical"]

TEMP_PATH = "sys/class/thermal/thermal_zone0/temp"
COOLING_DEVICES = "sys/class/thermal/cooling_device*"
FAN_HWMON = "sys/devices/platform/cooling_fan/hwmon/hwmon*"
# Pi 4 and earlier kernels expose the firmware flags here; Pi 5 kernels may not, hence the vcgencmd fallback.
THROTTLED_PATHS = "sys/devices/platform/soc*/soc*:firmware/get_throttled"
THROTTLE_BITS = {"under_voltage": 0, "freq_capped": 1, "throttled": 2, "soft_temp_limit": 3}
OCCURRED_SHIFT = 16
FAN_FAULT_READINGS = 4


def decode_throttled(value: int) -> dict[str, bool]:
    """Split the get_throttled bitmask into named flags: bits 0-3 are "now", bits 16-19 "has occurred since boot"."""
    flags = {}
    for name, bit in THROTTLE_BITS.items():
        flags[name] = bool(value >> bit & 1)
        flags[f"{name}_occurred"] = bool(value >> (bit + OCCURRED_SHIFT) & 1)
    return flags


def parse_throttled(text: str) -> int:
    """Accept both sysfs ("50005") and vcgencmd ("throttled=0x50005") spellings; both are hexadecimal."""
    return int(text.strip().rpartition("=")[2], 16)


class SysfsThermalSensor:
    """Reads the Pi's thermal state from sysfs under `root`; every missing file reads as None, never an error."""

    def __init__(self, root: Path, vcgencmd: str | None = None) -> None:
        self.root = Path(root)
        self.vcgencmd = vcgencmd

    @classmethod
    def for_root(cls, root: Path) -> SysfsThermalSensor:
        """vcgencmd asks the real firmware, so it is only consulted when reading the real /sys."""
        return cls(root, shutil.which("vcgencmd") if Path(root) == Path("/") else None)

    def _first(self, pattern: str, name: str = "") -> str | None:
        for path in sorted(glob.glob(str(self.root / pattern))):
            try:
                return (Path(path) / name if name else Path(path)).read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                continue
        return None

    def _int(self, pattern: str, name: str = "") -> int | None:
        text = self._first(pattern, name)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    def temperature_c(self) -> float | None:
        millidegrees = self._int(TEMP_PATH)
        return None if millidegrees is None else millidegrees / 1000.0

    def fan_state(self) -> int | None:
        for device in sorted(glob.glob(str(self.root / COOLING_DEVICES))):
            try:
                if (Path(device) / "type").read_text(encoding="ascii").strip() == "pwm-fan":
                    return int((Path(device) / "cur_state").read_text(encoding="ascii"))
            except (OSError, ValueError, UnicodeDecodeError):
                continue
        return None

    def throttled(self) -> int | None:
        text = self._first(THROTTLED_PATHS)
        if text is None and self.vcgencmd:
            try:
                text = subprocess.run([self.vcgencmd, "get_throttled"], capture_output=True, text=True,
                                      timeout=2, check=True).stdout
            except (OSError, subprocess.SubprocessError):
                return None
        try:
            return parse_throttled(text) if text else None
        except ValueError:
            return None

    def read(self) -> dict[str, Any]:
        """One snapshot: temp_c, fan_rpm, fan_pwm (0-255), fan_state (cooling level) and the throttle flags."""
        raw = self.throttled()
        flags: dict[str, bool | None] = (dict(decode_throttled(raw)) if raw is not None else
                                            dict.fromkeys(decode_throttled(0)))
        return {
            "temp_c": self.temperature_c(),
            "fan_rpm": self._int(FAN_HWMON, "fan1_input"),
            "fan_pwm": self._int(FAN_HWMON, "pwm1"),
            "fan_state": self.fan_state(),
            "throttled_raw": None if raw is None else hex(raw),
            **flags,
        }


@dataclass(frozen=True)
class ThermalDecision(ModeRules):
    """What the pipeline may do now: `factor` multiplies the continuous frame rate (0 = paused)."""

    mode: ThermalMode
    factor: float
    readings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        temp = self.readings.get("temp_c")
        return f"{'unknown' if temp is None else f'{temp:.1f} °C'}, {self.mode}"


class ThermalGovernor:
    """Turns readings into a mode with hysteresis: slow from slow_c, pause from pause_c, critical from
    critical_c, and back to normal only below resume_c. Reads at most once per poll_interval_s."""

    def __init__(self, cfg: ThermalConfig, sensor: SysfsThermalSensor,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.sensor = sensor
        self.clock = clock
        self.mode: ThermalMode = "normal"
        self._last: ThermalDecision | None = None
        self._last_at = 0.0
        self._fan_watch: deque[float] = deque(maxlen=FAN_FAULT_READINGS)

    @classmethod
    def from_config(cls, cfg: ThermalConfig) -> ThermalGovernor:
        return cls(cfg, SysfsThermalSensor.for_root(cfg.sysfs_root))

    def decide(self) -> ThermalDecision:
        """The current decision; a cached one until poll_interval_s has passed since the last reading."""
        if not self.cfg.enabled:
            return ThermalDecision("normal", 1.0)
        now = self.clock()
        if self._last is not None and now - self._last_at < self.cfg.poll_interval_s:
            return self._last
        readings = self.sensor.read()
        temp = readings["temp_c"]
        if temp is not None:
            self.mode = self._next_mode(temp)
        factor = {"normal": 1.0, "slow": self.cfg.slow_factor}.get(self.mode, 0.0)
        decision = ThermalDecision(self.mode, factor, readings, self._warnings(readings))
        _log_changes(self._last, decision)
        self._last, self._last_at = decision, now
        return decision

    def _next_mode(self, temp: float) -> ThermalMode:
        c, held = self.cfg, self.mode in ("pause", "critical")
        if temp >= c.critical_c:
            return "critical"
        if temp >= c.pause_c:
            return "pause"
        if temp < c.resume_c:
            return "normal"
        if held:
            return "pause"
        if temp >= c.slow_c or self.mode == "slow":
            return "slow"
        return "normal"

    def _warnings(self, r: dict[str, Any]) -> list[str]:
        out = []
        if r["temp_c"] is None:
            out.append(f"CPU temperature unknown: {self.sensor.root / TEMP_PATH} is missing or unreadable "
                       f"(thermal pacing is off)")
        if self._fan_failing(r):
            out.append(f"fan fault: the cooler is driven (pwm {r['fan_pwm']}, state {r['fan_state']}) but reports "
                       f"no RPM while the temperature keeps rising; check the fan cable and the heatsink")
        if r["under_voltage"]:
            out.append("under-voltage now: use the official 5 V / 5 A USB-C supply and a short cable")
        elif r["under_voltage_occurred"]:
            out.append("under-voltage has occurred since boot: the power supply may be too weak")
        if r["throttled"]:
            out.append("the firmware is throttling the CPU now")
        return out

    def _fan_failing(self, r: dict[str, Any]) -> bool:
        """Only a silent tachometer *and* a temperature still climbing counts: the Pi 5 tachometer can read 0
        at mid duty cycle while the fan spins fine."""
        driven = (r["fan_pwm"] or 0) > 0 or (r["fan_state"] or 0) > 0
        if not driven or r["fan_rpm"] or r["temp_c"] is None:
            self._fan_watch.clear()
            return False
        if self._fan_watch and r["temp_c"] <= self._fan_watch[-1]:
            self._fan_watch.clear()
        self._fan_watch.append(r["temp_c"])
        return len(self._fan_watch) == FAN_FAULT_READINGS


def _log_changes(before: ThermalDecision | None, now: ThermalDecision) -> None:
    """Log a warning when it first appears and each mode change, so a steady state does not flood the journal."""
    seen = {w.split(":", 1)[0] for w in before.warnings} if before else set()
    for text in now.warnings:
        if text.split(":", 1)[0] not in seen:
            log.warning("thermal: %s", text)
    if before is not None and before.mode != now.mode:
        log.warning("thermal: %s -> %s (%s)", before.mode, now.mode, now.summary())
