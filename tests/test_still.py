"""Full-resolution stills: the coarse-to-fine cascade with the shipped models, the byte-bounded stills queue, EXIF,
and a still through the daemon's pipeline."""

from __future__ import annotations

import io
import json
import threading
import time
import tracemalloc

import cv2
import numpy as np
import pytest
from conftest import make_config, read_sample
from PIL import Image

from deblurd.capture.camera import ReplaySource
from deblurd.daemon.pipeline import Pipeline
from deblurd.daemon.stills_queue import StillQueue
from deblurd.frames import Frame
from deblurd.optics.blur import convolve, disk_psf
from deblurd.output.exif import EXIF_IFD, EXPOSURE_TIME, ISO, ORIENTATION, SUBJECT_DISTANCE, exif_segment, with_exif
from deblurd.output.store import ResultStore, read_index
from deblurd.restore.cascade import scale_widths, spans, upsample_box, uses_still_path
from deblurd.restore.inference import rgb_to_luma
from deblurd.restore.router import Router

STILL = (1600, 900)
"""A still 2.5 times the working width: two scales (640, mapped, and 1600), quick enough for a test."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def sharp_still(size=STILL, seed: int = 0) -> np.ndarray:
    """Overlapping flat shapes with anti-aliased edges drawn at full size: sharp at every scale, and textured
    enough everywhere for the blur map to say so (the bundled photos hold real bokeh)."""
    rng = np.random.default_rng(seed)
    image = np.full((size[1], size[0], 3), 128, np.uint8)
    for _ in range(size[0] * size[1] // 3600):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        if rng.random() < 0.5:
            corner = (x + int(rng.integers(8, 120)), y + int(rng.integers(8, 120)))
            cv2.rectangle(image, (x, y), corner, colour, -1, cv2.LINE_AA)
        else:
            cv2.circle(image, (x, y), int(rng.integers(4, 60)), colour, -1, cv2.LINE_AA)
    return image


def blurred(rgb: np.ndarray, radius: float) -> np.ndarray:
    out = convolve(rgb.astype(np.float32) / 255.0, disk_psf(radius, 0.5))
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def test_scales_double_from_the_working_width_then_reach_the_full_width():
    assert scale_widths(4608, 640) == [640, 1280, 2560, 4608]
    assert scale_widths(1920, 640) == [640, 1280, 1920]
    assert scale_widths(1600, 640) == [640, 1600]
    assert scale_widths(640, 640) == [640]
    assert not uses_still_path((480, 1280, 3), 640) and uses_still_path((1080, 1920, 3), 640)
    assert list(spans(10, 4)) == [(0, 3), (3, 7), (7, 10)]


def test_a_box_upsampled_alone_matches_the_whole_plane_resized():
    plane = np.random.default_rng(0).random((90, 160)).astype(np.float32)
    whole = cv2.resize(plane, (288, 162), interpolation=cv2.INTER_CUBIC)
    assert np.abs(upsample_box(plane, (162, 288), (40, 100, 30, 250)) - whole[40:100, 30:250]).max() < 2e-3


def test_a_sharp_still_comes_back_as_the_same_array(photo_pack):
    rgb = sharp_still()
    severity, out = Router(photo_pack).route_still(rgb)
    assert out is rgb and severity.label == "sharp"
    assert [s["label"] for s in severity.map["scales"]] == ["sharp"]


def test_a_defocused_still_is_sharper_at_full_resolution_than_the_working_width_route(photo_pack):
    truth = sharp_still()
    rgb = blurred(truth, 5.0)
    timings: dict[str, float] = {}
    severity, out = Router(photo_pack).route_still(rgb, timings)
    _, before = Router(photo_pack).route(rgb)
    ours, theirs, base = (psnr(rgb_to_luma(x), rgb_to_luma(truth)) for x in (out, before, rgb))
    assert severity.label != "sharp" and [s["width"] for s in severity.map["scales"]] == [640]
    assert ours > base + 0.5 and ours > theirs + 0.1, (base, theirs, ours)
    assert out.shape == rgb.shape and out.dtype == np.uint8 and {"classify_s", "restore_s"} <= set(timings)


def test_a_still_holds_few_full_resolution_float_planes(photo_pack):
    rgb = blurred(sharp_still((2880, 1620)), 7.0)
    restorer = Router(photo_pack)
    restorer.route_still(rgb[:540, :960])
    tracemalloc.start()
    try:
        restorer.route_still(rgb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    plane = rgb.shape[0] * rgb.shape[1] * 4
    assert peak < 2.5 * plane, f"peak {peak / 1e6:.0f} MB is {peak / plane:.1f} float planes"


def test_small_images_and_forced_routes_go_through_the_router(photo_pack):
    rgb = read_sample("03-heavy.jpg")
    severity, out = Router(photo_pack).route_still(rgb)
    assert "scales" not in (severity.map or {})
    severity, out = Router(photo_pack, forced="sharp").route_still(sharp_still())
    assert severity.label == "sharp" and "scales" not in (severity.map or {})


def still_frame(seq: int) -> Frame:
    return Frame(sharp_still((1920, 1080), seed=seq), seq, 1.7e9 + seq, "still", {"lens_position": 1.5})


def test_the_stills_queue_holds_stills_beyond_its_byte_budget_as_jpeg():
    frames = [still_frame(n) for n in range(3)]
    raw = frames[0].pixels.nbytes
    queue = StillQueue(raw_bytes=raw + 1000)
    for frame in frames:
        queue.append(frame)
    assert len(queue) == 3 and raw < queue.nbytes < raw * 1.5
    first, second = queue.popleft(), queue.popleft()
    assert first is frames[0]
    assert second.seq == 1 and second.kind == "still" and second.metadata == {"lens_position": 1.5}
    assert np.abs(second.pixels.astype(int) - frames[1].pixels).mean() < 1.0
    assert len(queue) == 1 and queue.nbytes < raw / 4


def test_exif_carries_orientation_exposure_gain_and_lens_position():
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    jpeg = with_exif(buf.tobytes(), exif_segment({"exposure_us": 8000, "analogue_gain": 1.5, "lens_position": 4.0},
                                                 1.7e9))
    exif = Image.open(io.BytesIO(jpeg)).getexif()
    sub = exif.get_ifd(EXIF_IFD)
    assert exif[ORIENTATION] == 1 and float(sub[EXPOSURE_TIME]) == 0.008 and sub[ISO] == 150
    assert float(sub[SUBJECT_DISTANCE]) == 0.25
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="not a JPEG"):
        with_exif(b"\x89PNG", b"")


def test_a_still_through_the_pipeline_is_restored_at_full_resolution_with_exif(tmp_path, photo_pack):
    replay = tmp_path / "replay"
    replay.mkdir()
    cv2.imwrite(str(replay / "still.png"), cv2.cvtColor(blurred(sharp_still(), 5.0), cv2.COLOR_RGB2BGR))
    cfg = make_config(tmp_path, output={"max_per_minute": 0}, lens={"mode": "fixed"})
    store = ResultStore(cfg.output)
    store.open()
    source = ReplaySource(replay, 30.0, (320, 180))
    source.open()
    pipe = Pipeline(source, photo_pack, store, cfg)
    pipe.set_continuous(False)
    thread = threading.Thread(target=pipe.run, daemon=True)
    thread.start()
    assert pipe.request_still()
    deadline = time.monotonic() + 60
    while pipe.stats.frames_out < 1:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    pipe.stop()
    thread.join(10)
    entry = read_index(tmp_path / "out")[0]
    sidecar = json.loads((tmp_path / "out" / entry["files"]["sidecar"]).read_text())
    assert entry["kind"] == "still" and not entry["passthrough"] and sidecar["size"] == list(STILL)
    assert [s["width"] for s in sidecar["blur_map"]["scales"]] == [640]
    restored = tmp_path / "out" / entry["files"]["restored"]
    with Image.open(restored) as image:
        assert image.size == STILL and image.getexif()[ORIENTATION] == 1


def test_deblur_sends_a_large_image_through_the_cascade(photo_pack):
    from deblurd.commands.deblur import restore

    severity, out = restore(Router(photo_pack), blurred(sharp_still(), 5.0))
    assert out is not None and out.shape == (STILL[1], STILL[0], 3) and "scales" in severity.map
    severity, out = restore(Router(photo_pack), sharp_still())
    assert out is None and severity.label == "sharp"


def test_the_still_in_hand_counts_against_the_queues_byte_budget():
    frames = [still_frame(n) for n in range(3)]
    raw = frames[0].pixels.nbytes
    queue = StillQueue(raw_bytes=raw + 1000)
    queue.append(frames.pop(0))
    in_hand = queue.popleft()
    queue.append(frames[0])
    assert queue.nbytes < raw / 4, "held as JPEG while the still before it is being restored"
    del in_hand
    queue.popleft()
    queue.append(frames[1])
    assert queue.nbytes == raw, "held as captured once nothing is in hand"


def test_between_two_stills_the_next_one_out_counts_against_the_budget():
    frames = [still_frame(n) for n in range(3)]
    raw = frames[0].pixels.nbytes
    queue = StillQueue(raw_bytes=raw * 3 // 2)
    queue.append(frames.pop(0))
    queue.append(frames.pop(0))  # as JPEG: the first is held as captured
    queue.popleft()  # restored and stored: nothing in hand, the JPEG is next
    queue.append(frames.pop(0))
    assert queue.nbytes < raw / 2, "held as JPEG: the still before it is decoded while it waits"


def test_a_digit_pack_restores_stills_at_its_working_width(photo_pack_dir):
    from deblurd.restore.inference import ModelPack

    pack = ModelPack.load(photo_pack_dir.parent / "mnist", threads=1)
    severity, out = Router(pack).route_still(sharp_still())
    assert out.shape == (STILL[1], STILL[0], 3) and "scales" not in (severity.map or {})
