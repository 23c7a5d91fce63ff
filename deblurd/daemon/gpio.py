"""Capture button and status LED on the 40-pin header, through gpiozero (lgpio pin factory on the Pi 5).

Short press: one full-resolution still. Long press (gpio.long_press_s): toggle continuous mode, no still.
The pipeline is reached only through two callables, so this module never imports it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from gpiozero import LED, Button

from deblurd.config import GpioConfig

log = logging.getLogger(__name__)

RETRY_S = 0.05

# name -> None (off), "on" (steady) or (on seconds, off seconds) blinking; distinct at a glance.
LED_PATTERNS: dict[str, Any] = {
    "off": None,
    "running": (0.1, 1.9),   # short heartbeat blip every 2 s
    "capture": "on",         # steady while a still is taken and restored
    "paused": (1.0, 1.0),    # slow even blink: thermal pause or continuous mode off
    "error": (0.1, 0.1),     # fast flicker: see `journalctl -u deblurd`
}


class StillRequest(Protocol):
    def __call__(self) -> bool:
        """Queue one still; False when the pipeline's still queue is full (the press waits and retries)."""


class CaptureButton:
    """Turns button presses into still requests, one still per accepted press, however busy the pipeline is.

    Presses wait in a bounded queue (gpio.press_queue_size) while the pipeline's own still queue is full; a
    press that finds this queue full too is dropped and counted in `dropped`.
    """

    def __init__(self, button: Button, request_still: StillRequest, set_continuous: Callable[[bool], None],
                 queue_size: int, continuous: bool = True) -> None:
        self.button = button
        self._request_still = request_still
        self._set_continuous = set_continuous
        self.queue_size = queue_size
        self.continuous = continuous
        self.presses = 0
        self.long_presses = 0
        self.stills_requested = 0
        self.dropped = 0
        self._pending = 0
        self._down = False
        self._held = False
        self._closed = False
        self._cond = threading.Condition()
        button.when_pressed = self._pressed
        button.when_held = self._long_press
        button.when_released = self._released
        self._worker = threading.Thread(target=self._feed, name="deblurd-button", daemon=True)
        self._worker.start()

    @classmethod
    def from_config(cls, cfg: GpioConfig, request_still: StillRequest, set_continuous: Callable[[bool], None],
                    continuous: bool = True, pin_factory: Any = None) -> CaptureButton:
        """Button to GND on cfg.button_pin with the internal pull-up; gpiozero debounces and times the hold."""
        button = Button(cfg.button_pin, pull_up=True, bounce_time=cfg.bounce_s or None,
                        hold_time=cfg.long_press_s, pin_factory=pin_factory)
        return cls(button, request_still, set_continuous, cfg.press_queue_size, continuous)

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def _pressed(self) -> None:
        with self._cond:
            self._down, self._held = True, False

    def _long_press(self) -> None:
        with self._cond:
            if not self._down:  # released in the same instant the hold fired: it was a short press
                return
            self._held = True
            self.long_presses += 1
            self.continuous = not self.continuous
            enabled = self.continuous
        log.info("button held: continuous mode %s", "on" if enabled else "off")
        self._set_continuous(enabled)

    def _released(self) -> None:
        with self._cond:
            was_short = self._down and not self._held
            self._down = False
            if not was_short:
                return
            self.presses += 1
            if self._pending >= self.queue_size:
                self.dropped += 1
                log.warning("button press dropped: %d presses already wait for a still (%d dropped so far)",
                            self._pending, self.dropped)
                return
            self._pending += 1
            self._cond.notify_all()

    def _feed(self) -> None:
        """Hand waiting presses to the pipeline one at a time, retrying while its still queue is full."""
        while True:
            with self._cond:
                while self._pending == 0 and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                accepted = self._request_still()
            except Exception:
                log.exception("request_still failed; retrying")
                accepted = False
            with self._cond:
                if accepted:
                    self._pending -= 1
                    self.stills_requested += 1
                else:
                    self._cond.wait(RETRY_S)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=1.0)
        self.button.close()


class StatusLed:
    """One LED, one pattern per daemon state (see LED_PATTERNS); gpiozero runs the blinking in its own thread."""

    def __init__(self, led: LED) -> None:
        self.led = led
        self.state = "off"
        led.off()

    @classmethod
    def from_config(cls, cfg: GpioConfig, pin_factory: Any = None) -> StatusLed | None:
        """None when no led_pin is configured."""
        if cfg.led_pin is None:
            return None
        return cls(LED(cfg.led_pin, pin_factory=pin_factory))

    def set_state(self, name: str) -> None:
        if name not in LED_PATTERNS:
            raise ValueError(f"unknown LED state {name!r}; expected one of {', '.join(LED_PATTERNS)}")
        if name == self.state:
            return
        self.state = name
        pattern = LED_PATTERNS[name]
        if pattern is None:
            self.led.off()
        elif pattern == "on":
            self.led.on()
        else:
            self.led.blink(on_time=pattern[0], off_time=pattern[1])

    def close(self) -> None:
        self.led.close()
