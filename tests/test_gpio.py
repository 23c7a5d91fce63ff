"""Capture button and status LED against gpiozero's MockFactory."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from deblurd.config import GpioConfig
from deblurd.daemon.gpio import LED_PATTERNS, CaptureButton, StatusLed

CFG = GpioConfig(button_pin=17, led_pin=27, bounce_s=0.0, long_press_s=0.3, press_queue_size=3)


def wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class FakePipeline:
    """The two entry points the button uses, with a bounded still queue like the real pipeline's."""

    def __init__(self, capacity: int = 8) -> None:
        self.stills: queue.Queue[int] = queue.Queue(maxsize=capacity)
        self.continuous: list[bool] = []
        self.taken = 0

    def request_still(self) -> bool:
        try:
            self.stills.put_nowait(1)
            return True
        except queue.Full:
            return False

    def set_continuous(self, enabled: bool) -> None:
        self.continuous.append(enabled)

    def process(self, seconds_each: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.stills.get(timeout=0.01)
            except queue.Empty:
                continue
            time.sleep(seconds_each)
            self.taken += 1


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


def make_button(factory: MockFactory, pipe: FakePipeline, cfg: GpioConfig = CFG) -> CaptureButton:
    return CaptureButton.from_config(cfg, request_still=pipe.request_still, set_continuous=pipe.set_continuous,
                                     pin_factory=factory)


def click(pin) -> None:
    pin.drive_low()
    pin.drive_high()


def test_single_press_requests_one_still(factory: MockFactory) -> None:
    pipe = FakePipeline()
    button = make_button(factory, pipe)
    try:
        assert button.button.pull_up and button.button.hold_time == 0.3
        click(factory.pin(17))
        assert wait_for(lambda: button.stills_requested == 1)
        time.sleep(0.05)
        assert pipe.stills.qsize() == 1 and pipe.continuous == []
        assert (button.presses, button.long_presses, button.dropped) == (1, 0, 0)
    finally:
        button.close()


def test_long_press_toggles_continuous_without_a_still(factory: MockFactory) -> None:
    pipe = FakePipeline()
    button = make_button(factory, pipe)
    pin = factory.pin(17)
    try:
        for expected in ([False], [False, True]):
            pin.drive_low()
            assert wait_for(lambda expected=expected: pipe.continuous == expected)
            time.sleep(0.1)  # still held past the hold: must not fire twice
            pin.drive_high()
        time.sleep(0.1)
        assert pipe.continuous == [False, True]
        assert pipe.stills.qsize() == 0 and button.stills_requested == 0 and button.presses == 0
        assert button.long_presses == 2 and button.continuous is True
    finally:
        button.close()


def test_press_storm_while_busy_queues_up_to_the_limit_and_counts_drops(factory: MockFactory) -> None:
    pipe = FakePipeline(capacity=1)
    pipe.stills.put_nowait(0)  # the pipeline is busy: its still queue is full
    button = make_button(factory, pipe)
    pin = factory.pin(17)
    try:
        for _ in range(6):
            click(pin)
        assert (button.presses, button.pending, button.dropped) == (6, 3, 3)
        time.sleep(0.1)
        assert button.stills_requested == 0  # retried, never lost, while the queue stays full
        stop = threading.Event()
        worker = threading.Thread(target=pipe.process, args=(0.01, stop))
        worker.start()
        assert wait_for(lambda: pipe.taken == 4)  # the busy still plus exactly one per accepted press
        time.sleep(0.1)
        stop.set()
        worker.join()
        assert (pipe.taken, button.stills_requested, button.pending) == (4, 3, 0)
    finally:
        button.close()


def test_every_accepted_press_yields_one_still_while_processing(factory: MockFactory) -> None:
    pipe = FakePipeline(capacity=1)
    stop = threading.Event()
    worker = threading.Thread(target=pipe.process, args=(0.03, stop))
    worker.start()
    button = make_button(factory, pipe, CFG.model_copy(update={"press_queue_size": 8}))
    pin = factory.pin(17)
    try:
        for _ in range(7):
            click(pin)
            time.sleep(0.005)
        assert wait_for(lambda: pipe.taken == 7)
        time.sleep(0.1)
        assert (pipe.taken, button.stills_requested, button.dropped) == (7, 7, 0)
    finally:
        stop.set()
        worker.join()
        button.close()


def test_status_led_patterns(factory: MockFactory) -> None:
    led = StatusLed.from_config(CFG, pin_factory=factory)
    pin = factory.pin(27)
    try:
        assert not pin.state
        led.set_state("capture")
        time.sleep(0.25)
        assert pin.state and led.state == "capture"  # steady on
        pin.clear_states()
        led.set_state("error")
        time.sleep(0.45)
        assert len(pin.states) >= 4  # fast flicker
        led.set_state("running")
        time.sleep(0.25)
        assert not pin.state  # heartbeat blip is over
        led.set_state("off")
        assert not pin.state
        with pytest.raises(ValueError, match="unknown LED state"):
            led.set_state("party")
    finally:
        led.close()


def test_led_patterns_are_distinct_and_optional() -> None:
    blinking = [p for p in LED_PATTERNS.values() if isinstance(p, tuple)]
    assert len(set(blinking)) == len(blinking)
    assert {"running", "capture", "paused", "error"} <= set(LED_PATTERNS)
    assert StatusLed.from_config(CFG.model_copy(update={"led_pin": None})) is None
