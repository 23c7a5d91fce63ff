"""What the pipeline hears from and tells the world around it: the governor's Decision, service hooks, an indicator.

Narrow protocols with do-nothing defaults, so the pipeline runs (and is tested) without thermal sensors, systemd
or GPIO; the real ones are deblurd.daemon.thermal.ThermalGovernor, deblurd.daemon.service.SystemdNotifier and
deblurd.daemon.gpio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Decision(Protocol):
    """What the governor allows now; the pipeline asks it rather than interpreting `mode`."""

    @property
    def mode(self) -> str: ...

    @property
    def factor(self) -> float: ...

    @property
    def readings(self) -> dict[str, Any]: ...

    @property
    def allows_continuous(self) -> bool: ...

    @property
    def allows_still(self) -> bool: ...


class Governor(Protocol):
    """Decides the pace: a Decision with a frame-rate factor and the readings behind it."""

    def decide(self) -> Decision: ...


class ServiceHooks(Protocol):
    """Service manager messages (deblurd.daemon.service.SystemdNotifier in the daemon). watchdog() is called after
    every stored frame and while idle by choice; the implementation rate-limits it."""

    def ready(self) -> Any: ...

    def status(self, text: str) -> Any: ...

    def watchdog(self) -> Any: ...

    def stopping(self) -> Any: ...


class Indicator(Protocol):
    """A status light: running, capture, paused, error."""

    def set_state(self, name: str) -> None: ...


class ModeRules:
    """What a pace mode allows, in one place for every decision: continuous frames in normal and slow, stills
    unless critical."""

    mode: str

    @property
    def allows_continuous(self) -> bool:
        return self.mode in ("normal", "slow")

    @property
    def allows_still(self) -> bool:
        return self.mode != "critical"


@dataclass(frozen=True)
class SteadyDecision(ModeRules):
    mode: str = "normal"
    factor: float = 1.0
    readings: dict[str, Any] = field(default_factory=dict)


class NullGovernor:
    def decide(self) -> Decision:
        return SteadyDecision()


class NullHooks:
    def ready(self) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def watchdog(self) -> None:
        pass

    def stopping(self) -> None:
        pass


class NullIndicator:
    def set_state(self, name: str) -> None:
        pass
