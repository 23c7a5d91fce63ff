"""How many full-resolution frames the still path holds at once (the daemon's peak memory with a burst of presses):
the next still is taken out of the queue only once the store has written the one before, the store encodes a
still without a copy of its pixels, and the C library hands freed buffers back."""

from __future__ import annotations

import platform
import threading
import time
import tracemalloc

import cv2
import numpy as np
from conftest import make_config
from test_pipeline import StubPack, _wait_for
from test_still import sharp_still

from deblurd.capture.camera import ReplaySource
from deblurd.daemon.heap import return_large_buffers
from deblurd.daemon.pipeline import Pipeline
from deblurd.frames import Frame, Severity
from deblurd.output.store import Result, ResultStore, encode_image, read_index

PRESSES = 8


def test_a_burst_holds_one_still_and_its_result_while_the_store_writes_it(tmp_path, monkeypatch):
    replay = tmp_path / "replay"
    replay.mkdir()
    cv2.imwrite(str(replay / "still.png"), sharp_still((960, 540)))
    cfg = make_config(tmp_path, output={"max_per_minute": 0}, lens={"mode": "fixed"},
                      pipeline={"still_queue_size": PRESSES})
    store = ResultStore(cfg.output)
    store.open()
    source = ReplaySource(replay, 30.0, (160, 90))
    source.open()
    pipe = Pipeline(source, StubPack(), store, cfg, router=StubPack())
    pipe.set_continuous(False)
    stills = pipe._stills
    stills.raw_bytes = 960 * 540 * 3  # one still's pixels, as STILL_RAW_BYTES is one 12 MP still's
    held: list[tuple[bool, int]] = []
    save = store.save

    def slow_save(result: Result):
        time.sleep(0.2)  # time for the inference thread to take the next still, if it would
        held.append((stills.in_hand is result.frame, stills.nbytes))
        return save(result)

    monkeypatch.setattr(store, "save", slow_save)
    runner = threading.Thread(target=pipe.run, daemon=True)
    runner.start()
    for _ in range(PRESSES):
        assert pipe.request_still()
    _wait_for(lambda: pipe.stats.frames_out >= PRESSES, timeout=60)
    pipe.stop()
    runner.join(10)
    assert len([e for e in read_index(tmp_path / "out") if e["kind"] == "still"]) == PRESSES
    assert held == [(True, 0)] * PRESSES, ("while a still's result is written, the still in hand is that one (the "
                                           "next is not yet decoded) and the queue holds no pixels: " f"{held}")


def _still_result(size=(1920, 1080)) -> Result:
    rgb = sharp_still(size, seed=2)
    frame = Frame(rgb, 1, 1.7e9, "still", {"lens_position": 1.0})
    return Result.of(frame, Severity({"semi": 1.0}, "stub", restored={"semi": 1.0}), 255 - rgb, {}, {})


def test_the_store_encodes_a_still_without_a_copy_of_its_pixels(tmp_path):
    cfg = make_config(tmp_path, output={"max_per_minute": 0})
    result = _still_result()
    before = result.frame.pixels.copy(), result.restored.copy()
    with ResultStore(cfg.output) as store:
        tracemalloc.start()
        try:
            entry = store.save(result)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert entry is not None
    plane = result.frame.pixels.nbytes
    assert peak < 0.5 * plane, f"save() allocated {peak / plane:.2f} of a still's pixels (a copy would be 1.0)"
    assert np.array_equal(result.frame.pixels, before[0]) and np.array_equal(result.restored, before[1])
    for kind, pixels in (("input", before[0]), ("restored", before[1])):
        stored = cv2.imread(str(tmp_path / "out" / entry.files[kind]), cv2.IMREAD_COLOR)
        copied = cv2.imdecode(np.frombuffer(encode_image(pixels, "jpg", cfg.output.jpeg_quality), np.uint8),
                              cv2.IMREAD_COLOR)
        assert np.array_equal(stored, copied), f"the stored {kind} is the JPEG a copy would have given"


def test_encoding_in_place_gives_the_same_bytes_and_leaves_the_pixels_as_they_were():
    rgb = np.random.default_rng(0).integers(0, 256, (301, 257, 3), np.uint8)  # rows not a multiple of the band
    kept = rgb.copy()
    for fmt in ("jpg", "png"):
        assert encode_image(rgb, fmt, in_place=True) == encode_image(kept, fmt)
        assert np.array_equal(rgb, kept)
    view = rgb[:, ::2]  # not one block: encoded from a copy, and not touched
    assert encode_image(view, "jpg", in_place=True) == encode_image(kept[:, ::2], "jpg")
    frozen = kept.copy()
    frozen.flags.writeable = False
    assert encode_image(frozen, "jpg", in_place=True) == encode_image(kept, "jpg")


def test_the_daemon_fixes_the_c_librarys_mmap_threshold_where_it_has_one():
    assert return_large_buffers() is (platform.libc_ver()[0] == "glibc")
