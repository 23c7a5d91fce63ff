"""ThermalGovernor against a temporary tree laid out like a Pi 5's sysfs, changed over time."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from deblurd.config import ThermalConfig
from deblurd.daemon.thermal import SysfsThermalSensor, ThermalGovernor, decode_throttled, parse_throttled


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Pi5Sysfs:
    """The files a Pi 5 with the Active Cooler exposes, under a temp root."""

    def __init__(self, root: Path, fan: bool = True, throttled: bool = True) -> None:
        self.root = root
        self.zone = root / "sys/class/thermal/thermal_zone0"
        self.zone.mkdir(parents=True)
        (root / "sys/class/thermal/cooling_device0").mkdir()
        (root / "sys/class/thermal/cooling_device0/type").write_text("cpufreq-cpu0\n")
        (root / "sys/class/thermal/cooling_device0/cur_state").write_text("0\n")
        if fan:
            self.cdev = root / "sys/class/thermal/cooling_device1"
            self.cdev.mkdir()
            (self.cdev / "type").write_text("pwm-fan\n")
            self.hwmon = root / "sys/devices/platform/cooling_fan/hwmon/hwmon3"
            self.hwmon.mkdir(parents=True)
            self.set_fan(state=0, pwm=0, rpm=0)
        if throttled:
            self.firmware = root / "sys/devices/platform/soc/soc:firmware"
            self.firmware.mkdir(parents=True)
            self.set_throttled(0)

    def set_temp(self, celsius: float) -> None:
        (self.zone / "temp").write_text(f"{int(celsius * 1000)}\n")

    def set_fan(self, state: int, pwm: int, rpm: int) -> None:
        (self.cdev / "cur_state").write_text(f"{state}\n")
        (self.hwmon / "pwm1").write_text(f"{pwm}\n")
        (self.hwmon / "fan1_input").write_text(f"{rpm}\n")

    def set_throttled(self, value: int) -> None:
        (self.firmware / "get_throttled").write_text(f"{value:x}\n")


@pytest.fixture
def sysfs(tmp_path: Path) -> Pi5Sysfs:
    return Pi5Sysfs(tmp_path)


def governor(root: Path, clock: FakeClock, **overrides) -> ThermalGovernor:
    cfg = ThermalConfig(sysfs_root=root, poll_interval_s=2.0, **overrides)
    return ThermalGovernor(cfg, SysfsThermalSensor(root), clock=clock)


def step(gov: ThermalGovernor, clock: FakeClock, sysfs: Pi5Sysfs, temp: float):
    sysfs.set_temp(temp)
    clock.now += 2.0
    return gov.decide()


def test_heat_up_slow_pause_cool_down_resume(sysfs: Pi5Sysfs) -> None:
    clock = FakeClock()
    gov = governor(sysfs.root, clock)
    path = [(60, "normal", 1.0), (74.9, "normal", 1.0), (75, "slow", 0.5), (77, "slow", 0.5),
            (72, "slow", 0.5),  # below slow_c but not below resume_c: stays slow
            (80, "pause", 0.0), (76, "pause", 0.0), (71, "pause", 0.0),  # paused until below resume_c
            (69.9, "normal", 1.0), (72, "normal", 1.0)]
    for temp, mode, factor in path:
        d = step(gov, clock, sysfs, temp)
        assert (d.mode, d.factor) == (mode, factor), f"at {temp} °C"
        assert d.readings["temp_c"] == pytest.approx(temp, abs=0.001)
    assert d.allows_continuous and d.allows_still


def test_critical_refuses_stills_and_steps_down_through_pause(sysfs: Pi5Sysfs) -> None:
    clock = FakeClock()
    gov = governor(sysfs.root, clock)
    d = step(gov, clock, sysfs, 86)
    assert d.mode == "critical" and not d.allows_still and not d.allows_continuous
    assert step(gov, clock, sysfs, 82).mode == "pause"
    assert step(gov, clock, sysfs, 74).mode == "pause"
    assert step(gov, clock, sysfs, 65).mode == "normal"


def test_reads_are_rate_limited_by_poll_interval(sysfs: Pi5Sysfs) -> None:
    clock = FakeClock()
    gov = governor(sysfs.root, clock)
    sysfs.set_temp(60)
    assert gov.decide().mode == "normal"
    sysfs.set_temp(90)
    clock.now += 1.9
    assert gov.decide().mode == "normal"  # cached: no new reading yet
    clock.now += 0.1
    assert gov.decide().mode == "critical"


def test_fan_readings_and_fault_only_when_silent_and_heating(sysfs: Pi5Sysfs) -> None:
    clock = FakeClock()
    gov = governor(sysfs.root, clock)
    sysfs.set_fan(state=2, pwm=150, rpm=3200)
    d = step(gov, clock, sysfs, 60)
    assert (d.readings["fan_rpm"], d.readings["fan_pwm"], d.readings["fan_state"]) == (3200, 150, 2)
    assert d.warnings == []

    # Tachometer reads 0 at mid duty while the temperature holds: no alarm.
    sysfs.set_fan(state=2, pwm=150, rpm=0)
    for _ in range(6):
        assert step(gov, clock, sysfs, 62).warnings == []

    # Driven, silent, and the temperature rises on three readings in a row (62 -> 65): alarm.
    warnings = [step(gov, clock, sysfs, t).warnings for t in (63, 64, 65)]
    assert warnings[:2] == [[], []]
    assert any(w.startswith("fan fault") for w in warnings[2])

    # The fan reports RPM again: the warning goes.
    sysfs.set_fan(state=2, pwm=150, rpm=3300)
    assert step(gov, clock, sysfs, 67).warnings == []


def test_fan_off_and_silent_is_not_a_fault(sysfs: Pi5Sysfs) -> None:
    clock = FakeClock()
    gov = governor(sysfs.root, clock)
    for t in (50, 51, 52, 53, 54, 55):
        assert step(gov, clock, sysfs, t).warnings == []


def test_under_voltage_now_and_occurred(sysfs: Pi5Sysfs) -> None:
    clock = FakeClock()
    gov = governor(sysfs.root, clock)
    sysfs.set_throttled(0x50005)
    d = step(gov, clock, sysfs, 60)
    assert d.readings["under_voltage"] and d.readings["throttled"] and d.readings["under_voltage_occurred"]
    assert not d.readings["soft_temp_limit"]
    assert any(w.startswith("under-voltage now") for w in d.warnings)
    sysfs.set_throttled(0x50000)
    d = step(gov, clock, sysfs, 60)
    assert not d.readings["under_voltage"]
    assert [w for w in d.warnings if "under-voltage" in w] == [
        "under-voltage has occurred since boot: the power supply may be too weak"]


def test_dev_machine_without_fan_or_temperature(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    gov = governor(tmp_path, clock)
    with caplog.at_level(logging.WARNING, logger="deblurd.daemon.thermal"):
        for _ in range(3):
            clock.now += 5
            d = gov.decide()
    assert d.mode == "normal" and d.factor == 1.0
    assert d.readings["temp_c"] is None and d.readings["fan_rpm"] is None and d.readings["under_voltage"] is None
    assert d.summary() == "unknown, normal"
    assert len(d.warnings) == 1 and "temperature unknown" in d.warnings[0]
    assert sum("temperature unknown" in r.message for r in caplog.records) == 1


def test_disabled_governor_never_reads(tmp_path: Path) -> None:
    gov = ThermalGovernor.from_config(ThermalConfig(enabled=False, sysfs_root=tmp_path))
    assert gov.decide().mode == "normal"


def test_throttled_parsing_both_spellings() -> None:
    assert parse_throttled("50005\n") == parse_throttled("throttled=0x50005\n") == 0x50005
    flags = decode_throttled(0x80008)
    assert flags["soft_temp_limit"] and flags["soft_temp_limit_occurred"] and not flags["freq_capped"]


def test_vcgencmd_fallback_when_sysfs_node_missing(tmp_path: Path) -> None:
    Pi5Sysfs(tmp_path, throttled=False).set_temp(50)
    script = tmp_path / "vcgencmd"
    script.write_text("#!/bin/sh\necho throttled=0x20002\n")
    script.chmod(0o755)
    r = SysfsThermalSensor(tmp_path, vcgencmd=str(script)).read()
    assert r["freq_capped"] and r["freq_capped_occurred"] and r["throttled_raw"] == "0x20002"


def test_from_config_reads_the_configured_root_without_vcgencmd(sysfs: Pi5Sysfs) -> None:
    gov = ThermalGovernor.from_config(ThermalConfig(sysfs_root=sysfs.root))
    assert gov.sensor.root == sysfs.root and gov.sensor.vcgencmd is None
    sysfs.set_temp(76)
    assert gov.decide().mode == "slow"
