"""The stills spool: button stills beyond the memory budget wait on disk, survive a stop whose deadline passes, a
crash and a full disk, and are restored at the next start; only a stored result releases one."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
from conftest import make_config
from test_still import sharp_still, still_frame

from deblurd.atomic import TMP_MARK, AtomicWriter
from deblurd.capture.camera import ReplaySource
from deblurd.daemon.pipeline import Pipeline
from deblurd.daemon.presses import PressBook, press_of, record_press
from deblurd.daemon.spool import REJECTED_DIR, QueuedStill, SpoolFolder
from deblurd.daemon.stills_queue import StillQueue
from deblurd.frames import Frame
from deblurd.output.layout import SPOOL_DIR
from deblurd.output.store import ResultStore, StoreError, read_index


def test_stills_beyond_the_budget_wait_on_disk_and_a_stored_result_releases_them(tmp_path):
    spool = SpoolFolder(tmp_path / SPOOL_DIR)
    frames = [still_frame(n) for n in range(3)]
    queue = StillQueue(raw_bytes=frames[0].pixels.nbytes + 1000, spool=spool)
    for frame in frames:
        queue.append(frame)
    assert len(queue) == 3 and queue.nbytes == frames[0].pixels.nbytes, "the two beyond the budget hold no memory"
    assert len(spool.waiting()) == 3, "every press is on disk at once"
    first, second = queue.popleft(), queue.popleft()
    assert first.pixels is frames[0].pixels and first.spool == spool.waiting()[0], "in memory and on disk"
    SpoolFolder.release(first.spool)
    assert second.seq == 1 and second.kind == "still" and second.metadata == {"lens_position": 1.5}
    assert second.captured_at == frames[1].captured_at and second.spool == spool.waiting()[0]
    assert np.abs(second.pixels.astype(int) - frames[1].pixels).mean() < 1.0
    assert len(spool.waiting()) == 2, "taken out is not yet stored: still on disk"
    SpoolFolder.release(second.spool)
    assert [p.name for p in spool.waiting()] == [queue.popleft().spool.name]


def test_a_new_queue_recovers_what_an_earlier_run_left_and_rejects_a_damaged_still(tmp_path, caplog):
    spool = SpoolFolder(tmp_path / SPOOL_DIR)
    queue = StillQueue(raw_bytes=0, spool=spool)
    for n in range(3):
        queue.append(still_frame(n))
    damaged = spool.waiting()[1]
    damaged.write_bytes(damaged.read_bytes()[:100])  # a crash mid-copy, a bad sector
    later = StillQueue(spool=SpoolFolder(tmp_path / SPOOL_DIR))
    with caplog.at_level(logging.ERROR):
        assert later.recover() == 2
    assert [later.popleft().seq, later.popleft().seq] == [0, 2] and len(later) == 0
    rejected = damaged.parent / REJECTED_DIR
    assert not damaged.exists() and damaged.name in caplog.text, "out of the spool, and named"
    assert (rejected / damaged.name).is_file() and (rejected / damaged.with_suffix(".json").name).is_file()
    assert "cannot be read as an image" in (rejected / f"{damaged.stem}.reason.txt").read_text()
    assert StillQueue(spool=SpoolFolder(tmp_path / SPOOL_DIR)).recover() == 2, "not read again at the next start"


def test_spill_puts_the_stills_the_disk_refused_on_disk(tmp_path):
    blocked = tmp_path / SPOOL_DIR
    blocked.write_text("not a folder")  # the spool cannot be made: the presses wait in memory
    spool = SpoolFolder(blocked)
    queue = StillQueue(raw_bytes=still_frame(0).pixels.nbytes, spool=spool)
    for n in range(2):
        queue.append(still_frame(n))
    assert queue.nbytes > 0 and spool.waiting() == []
    blocked.unlink()
    assert queue.spill() == 2 and queue.nbytes == 0 and len(spool.waiting()) == 2
    assert queue.spill() == 0, "nothing left only in memory"
    assert [f.seq for f in (queue.popleft(), queue.popleft())] == [0, 1]


def test_a_full_disk_keeps_the_still_in_memory(tmpfs, caplog):
    folder = tmpfs("64k")
    queue = StillQueue(raw_bytes=0, spool=SpoolFolder(folder / SPOOL_DIR))
    with caplog.at_level(logging.WARNING):
        queue.append(still_frame(7))
    assert queue.nbytes > 0 and "held in memory" in caplog.text
    assert not list((folder / SPOOL_DIR).glob("*")), "no partial file left behind"
    assert queue.popleft().seq == 7


def test_the_daemon_restores_a_still_an_earlier_run_left_in_the_spool(tmp_path, samples_dir, photo_pack):
    cfg = make_config(tmp_path, output={"max_per_minute": 0}, lens={"mode": "fixed"}, pipeline={"max_frames": 2})
    store = ResultStore(cfg.output)
    store.open()
    spool = SpoolFolder(tmp_path / "out" / SPOOL_DIR)
    left = Frame(sharp_still((1600, 900), seed=3), 41, 1.7e9, "still", {"lens_position": 2.0})
    spool.write(QueuedStill.pack(left))
    source = ReplaySource(samples_dir, 30.0, (160, 120))
    source.open()
    Pipeline(source, photo_pack, store, cfg).run()
    stills = [e for e in read_index(tmp_path / "out") if e["kind"] == "still"]
    assert len(stills) == 1 and spool.waiting() == []
    sidecar = json.loads((tmp_path / "out" / stills[0]["files"]["sidecar"]).read_text())
    assert sidecar["size"] == [1600, 900]


def test_stills_a_stop_overtakes_are_spooled_and_restored_at_the_next_start(tmp_path, photo_pack, monkeypatch,
                                                                           caplog):
    import threading

    import cv2

    from deblurd.daemon import pipeline as pipeline_module

    replay = tmp_path / "replay"
    replay.mkdir()
    cv2.imwrite(str(replay / "still.png"), sharp_still((2560, 1440), seed=5))
    cfg = make_config(tmp_path, output={"max_per_minute": 0}, lens={"mode": "fixed"}, camera={"fps": 30},
                      pipeline={"still_queue_size": 8})
    monkeypatch.setattr(pipeline_module, "STOP_GRACE_S", 0.0)  # the deadline passes at once

    def pipeline() -> Pipeline:
        store = ResultStore(cfg.output)
        store.open()
        source = ReplaySource(replay, 30.0, (320, 180))
        source.open()
        return Pipeline(source, photo_pack, store, cfg)

    first = pipeline()
    first.set_continuous(False)
    stalled: list[StoreError] = []

    def run(daemon: Pipeline) -> None:
        try:
            daemon.run()
        except StoreError as exc:  # no grace: a still being written at the deadline is a stalled disk, and said
            stalled.append(exc)

    runner = threading.Thread(target=run, args=(first,), daemon=True)
    runner.start()
    for _ in range(4):
        assert first.request_still()
    while first.stats.frames_in < 4:
        assert runner.is_alive()
        time.sleep(0.01)
    with caplog.at_level(logging.WARNING):
        first.stop()
        runner.join(30)
    first._store_thread.join(30)  # a result the deadline overtook may still be on its way to disk
    spool = SpoolFolder(tmp_path / "out" / SPOOL_DIR)
    stored = [e for e in read_index(tmp_path / "out") if e["kind"] == "still"]
    assert len(spool.waiting()) >= 1 and len(stored) + len(spool.waiting()) == 4, "every press kept"
    assert "restored at the next start" in caplog.text
    assert all("still writing" in str(exc) for exc in stalled)

    second = pipeline()
    second.set_continuous(False)
    runner = threading.Thread(target=run, args=(second,), daemon=True)
    runner.start()
    while second.stats.frames_out < 4 - len(stored):
        assert runner.is_alive()
        time.sleep(0.01)
    second.stop()
    runner.join(30)
    assert all("still writing" in str(exc) for exc in stalled)
    assert spool.waiting() == [] and len([e for e in read_index(tmp_path / "out") if e["kind"] == "still"]) == 4


def _replay_pipeline(cfg, samples_dir, photo_pack, store=None) -> Pipeline:
    if store is None:
        store = ResultStore(cfg.output)
        store.open()
    source = ReplaySource(samples_dir, 30.0, (160, 120))
    source.open()
    return Pipeline(source, photo_pack, store, cfg)


def _stills(out) -> list[dict]:
    return [json.loads((out / e["files"]["sidecar"]).read_text()) for e in read_index(out) if e["kind"] == "still"]


def test_a_press_is_recorded_before_it_is_acknowledged_and_a_crash_before_its_still_does_not_lose_it(
        tmp_path, samples_dir, photo_pack):
    cfg = make_config(tmp_path, output={"max_per_minute": 0}, lens={"mode": "fixed"}, pipeline={"max_frames": 3})
    first = _replay_pipeline(cfg, samples_dir, photo_pack)
    assert first.request_still() and first.request_still()
    records = PressBook(tmp_path / "out").waiting()
    assert len(records) == 2, "both presses are on disk the moment they are acknowledged"
    first.store.close()  # the process dies here, before the capture thread ever ran

    _replay_pipeline(cfg, samples_dir, photo_pack).run()
    stills = _stills(tmp_path / "out")
    assert sorted(s["camera"]["press"] for s in stills) == sorted(p.stem for p in records)
    assert all(s["camera"]["press_via"] == "button" and s["camera"]["pressed_at"] <= time.time() for s in stills)
    assert PressBook(tmp_path / "out").waiting() == [] and SpoolFolder(tmp_path / "out" / SPOOL_DIR).waiting() == []


def test_a_jpeg_a_kill_left_without_its_json_is_rebuilt_and_what_is_not_a_jpeg_is_quarantined(tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    press = record_press(out, "button")
    spool = SpoolFolder(out / SPOOL_DIR)
    jpeg = spool.write(QueuedStill.pack(still_frame(4)), press.name)
    jpeg.with_suffix(".json").unlink()  # the kill came between the JPEG and its JSON
    (out / SPOOL_DIR / "0000000001.000000-00000002.jpg").write_bytes(b"<html>not a still</html>")
    (out / SPOOL_DIR / "0000000002.000000-00000003.json").write_text("{}")  # a release cut short
    dead = 4_000_000 + os.getpid() % 100  # above pid_max: no such process
    (out / SPOOL_DIR / f".x.jpg{TMP_MARK}{dead}").write_bytes(b"torn")
    queue = StillQueue(spool=spool)
    with caplog.at_level(logging.INFO):
        assert queue.recover() == 1
    frame = queue.popleft()
    assert frame.metadata["press"] == press.name and frame.metadata["spool_rebuilt"]
    assert np.abs(frame.pixels.astype(int) - still_frame(4).pixels).mean() < 1.0
    assert PressBook(out).waiting() == [], "its press is answered by the rebuilt still, not taken twice"
    assert (out / SPOOL_DIR / "rejected" / "0000000001.000000-00000002.jpg").is_file()
    assert sorted(p.name for p in (out / SPOOL_DIR).iterdir()) == sorted([jpeg.name, jpeg.with_suffix(".json").name,
                                                                            "rejected"])
    assert "had no metadata" in caplog.text and "not a JPEG" in caplog.text and "released" in caplog.text


def test_links_in_the_spool_are_never_followed_and_crafted_press_names_never_become_paths(tmp_path, caplog):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    victim = outside / "precious.jpg"
    victim.write_bytes(QueuedStill.pack(still_frame(1)).jpeg)
    (outside / "precious.json").write_text(json.dumps({"seq": 1, "captured_at": 1.0}))
    (outside / "victim.press").write_text("{}")
    spool = out / SPOOL_DIR
    spool.mkdir(parents=True)
    (spool / "0000000001.000000-00000001.jpg").symlink_to(victim)
    (spool / "0000000001.000000-00000001.json").symlink_to(outside / "precious.json")
    (spool / "1700000000.000000-1-00001.press").symlink_to(outside / "victim.press")
    (spool / "..%2fvictim.press").write_text("{}")
    with caplog.at_level(logging.WARNING):
        assert StillQueue(spool=SpoolFolder(spool)).recover() == 0
        assert PressBook(out).waiting() == [] and PressBook(out).take(8) is None
    PressBook(out).done(press_of({"press": "../../outside/victim"}))
    assert sorted(p.name for p in outside.iterdir()) == ["precious.jpg", "precious.json", "victim.press"]
    assert victim.read_bytes()[:2] == b"\xff\xd8" and "left alone" in caplog.text


def test_the_repair_at_the_start_leaves_a_press_record_this_process_is_writing(tmp_path):
    spool = tmp_path / SPOOL_DIR
    spool.mkdir()
    writing = spool / f".1700000000.000000-1-00001.press{TMP_MARK}{os.getpid()}"
    writing.write_text("{}")  # a press recorded while the daemon starts: its rename comes after the repair
    earlier = spool / f".x.jpg{TMP_MARK}{os.getpid()}"
    earlier.write_bytes(b"torn")
    os.utime(earlier, (1.7e9, 1.7e9))  # an earlier run that had this pid, killed mid-write
    SpoolFolder(spool).repair()
    assert writing.exists() and not earlier.exists()


def test_a_press_found_on_disk_while_its_record_is_written_is_queued_once(tmp_path):
    taken = []

    class ScanningWriter(AtomicWriter):
        """The capture thread's scan for records lands just after this record is in place."""

        def write(self, path, data, sync_dir=True):
            super().write(path, data, sync_dir)
            book.poke()
            taken.append(book.take(8))

    book = PressBook(tmp_path, ScanningWriter())
    press = book.accept("button")
    assert press.durable and taken == [None], "the scan does not take a press whose record is being written"
    assert book.take(8) == press and book.take(8) is None, "queued once: one still per press"
