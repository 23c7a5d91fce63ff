"""A disk that fills up, on real small tmpfs mounts: the kernel's ENOSPC (out of bytes, and out of inodes) stops
writing without partial files and with a couple of log lines, not one per frame; writing resumes once space
returns, and a press's still waits in memory for it (or is taken again after a restart); the free-space floor
removes only the oldest continuous results it must, never stills, never beyond its per-run cap, and nothing when
the floor is out of reach."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_consistent, make_config, make_result, wait_until

from deblurd.capture.camera import ReplaySource
from deblurd.config import OutputConfig
from deblurd.daemon.pipeline import Pipeline
from deblurd.output.store import ResultStore, read_index

OLD = time.time() - 86400  # retention never touches results younger than a few minutes


def _open(out: Path, **cfg) -> ResultStore:
    store = ResultStore(OutputConfig(dir=out, **{"min_free_mb": 0, "image_format": "png", **cfg}), retry_s=0)
    store.open()
    return store


def _fill(store: ResultStore, count: int, **kw) -> list:
    return [store.save(make_result(i, size=(100, 120), noisy=True, **kw)) for i in range(1, count + 1)]


@pytest.mark.parametrize("limit", ["bytes", "inodes"])
def test_real_enospc_stops_writing_quietly_and_resumes(tmpfs, caplog, limit):
    caplog.set_level(logging.INFO)
    fs = tmpfs("400k") if limit == "bytes" else tmpfs("64m", inodes=40)
    store = _open(fs / "out")
    saved = _fill(store, 60)
    assert saved[0] is not None and saved[-1] is None and "the disk is full" in store.full_reason
    assert "min_free_mb" not in store.full_reason  # the kernel said so, not the floor
    entries = assert_consistent(fs / "out")
    assert len(entries) == sum(s is not None for s in saved)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    print(f"\nENOSPC ({limit}): {len(entries)} results stored, {saved.count(None)} refused, "
          f"{len(errors)} error line(s)")
    assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
    for rel in entries[0]["files"].values():
        (fs / "out" / rel).unlink()  # another program frees space (the index line goes stale: we wrote it so)
    store.entries = store.entries[1:]
    assert store.save(make_result(99, size=(32, 32))) is not None and store.full_reason is None
    assert "writing results to" in caplog.text and "again" in caplog.text


def test_floor_removes_only_the_oldest_continuous_results_it_must(tmpfs, caplog):
    caplog.set_level(logging.INFO)
    fs = tmpfs("3m")
    store = _open(fs / "out", min_free_mb=1)
    store.save(make_result(1, kind="still", size=(100, 120), noisy=True, when=OLD))
    for seq in range(2, 12):
        store.save(make_result(seq, size=(100, 120), noisy=True, when=OLD + seq))
    before = [e.id for e in store.entries]
    filler = fs / "another-program.bin"
    filler.write_bytes(b"x" * (store.free_bytes() - 1_000_000 + 60_000))  # 60 kB below the floor
    entry = store.save(make_result(50, size=(100, 120), noisy=True))
    after = [e["id"] for e in assert_consistent(fs / "out")]
    removed = [i for i in before if i not in after]
    print(f"\nfloor: removed ids {removed} for a 60 kB shortfall; {store.guard.last}")
    assert entry is not None and removed and removed == before[1:1 + len(removed)]  # oldest continuous, in order
    assert 1 in after and store.guard.removed == len(removed) <= 3  # the still stays; no more than needed
    assert store.disk_state()["removed_for_space"] == len(removed) and "below output.min_free_mb" in caplog.text


def test_floor_out_of_reach_removes_nothing_and_says_why(tmpfs, caplog):
    fs = tmpfs("3m")
    store = _open(fs / "out", min_free_mb=1)
    for seq in range(1, 6):
        store.save(make_result(seq, kind="still" if seq == 1 else "continuous", size=(100, 120), noisy=True,
                           when=OLD + seq))
    (fs / "another-program.bin").write_bytes(b"x" * (store.free_bytes() - 200_000))  # 800 kB short
    before = assert_consistent(fs / "out")
    assert [store.save(make_result(9)) for _ in range(20)] == [None] * 20
    assert assert_consistent(fs / "out") == before  # nothing deleted
    assert "would free only" in store.full_reason and "so none were removed" in store.full_reason
    assert caplog.text.count("not writing results") == 1


def test_floor_stops_at_its_per_run_cap(tmpfs):
    fs = tmpfs("3m")
    store = _open(fs / "out", min_free_mb=1, min_free_prune_max=2)
    for seq in range(1, 12):
        store.save(make_result(seq, size=(100, 120), noisy=True, when=OLD + seq))
    count = len(store.entries)
    for _ in range(4):  # another program keeps eating the space the floor frees
        with open(fs / "another-program.bin", "ab") as filler:
            filler.write(b"x" * max(0, store.free_bytes() - 1_000_000 + 30_000))
        store.save(make_result(99, size=(32, 32)))
    assert store.guard.removed == 2 and len(store.entries) >= count - 2
    assert "min_free_prune_max = 2" in store.full_reason


def test_floor_larger_than_the_disk_is_a_warning_at_start(tmpfs, caplog):
    fs = tmpfs("1m")
    _open(fs / "out", min_free_mb=5)
    assert "output.min_free_mb = 5 MB is more than the whole disk" in caplog.text
    assert "0 turns the floor off" in caplog.text


def _take_disk(folder: Path, leave: int = 0, inodes: bool = False) -> list[Path]:
    """Another program takes the disk: every byte (or every inode) but `leave` bytes."""
    if inodes:
        files = []
        try:
            while True:
                files.append(folder / f"filler-{len(files)}")
                files[-1].touch()
        except OSError:
            return files[:-1]
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return [filler]


def _still_pipeline(tmp_path: Path, out: Path, samples_dir: Path, photo_pack) -> Pipeline:
    cfg = make_config(tmp_path, output={"dir": str(out), "max_per_minute": 0, "min_free_mb": 0},
                      lens={"mode": "fixed"}, service={"state_file": str(tmp_path / "status.json")})
    store = ResultStore(cfg.output, retry_s=0.2)
    store.open()
    source = ReplaySource(samples_dir, 30.0, (160, 120))
    source.open()
    pipe = Pipeline(source, photo_pack, store, cfg)
    pipe.set_continuous(False)  # only the presses write
    return pipe


def _start(pipe: Pipeline) -> threading.Thread:
    thread = threading.Thread(target=pipe.run, daemon=True)
    thread.start()
    wait_until(lambda: pipe._last_status > 0, what="the pipeline's first status")  # started: gallery written
    return thread


def _stills(out: Path) -> list[dict]:
    return [e for e in read_index(out) if e["kind"] == "still"]


@pytest.mark.parametrize("limit", ["bytes", "inodes"])
def test_presses_on_a_full_disk_wait_in_memory_and_are_stored_when_space_returns(tmpfs, tmp_path, samples_dir,
                                                                                 photo_pack, caplog, limit):
    fs = tmpfs("3m") if limit == "bytes" else tmpfs("64m", inodes=200)
    pipe = _still_pipeline(tmp_path, fs / "out", samples_dir, photo_pack)
    thread = _start(pipe)
    filler = _take_disk(fs, inodes=limit == "inodes")
    with caplog.at_level(logging.WARNING):
        assert pipe.request_still() and pipe.request_still()
        wait_until(lambda: pipe.stats.processed == 2 and len(pipe._saver.unsaved) == 2, what="both stills restored")
    assert _stills(fs / "out") == [] and "held in memory only" in caplog.text, "nothing fits: they wait in memory"
    for path in filler:
        path.unlink()
    wait_until(lambda: len(_stills(fs / "out")) == 2, what="the stills, once space returns")
    pipe.stop()
    thread.join(30)
    print(f"\nfull disk ({limit}): 2 of 2 presses stored once space returned")
    assert pipe.stats.dropped.get("disk_full", 0) == 0 and not list(pipe.store.spool_dir.glob("*"))
    assert_consistent(fs / "out")


def test_presses_recorded_on_a_full_disk_are_taken_again_after_a_stop_and_a_restart(tmpfs, tmp_path, samples_dir,
                                                                                    photo_pack, caplog):
    fs = tmpfs("3m")
    pipe = _still_pipeline(tmp_path, fs / "out", samples_dir, photo_pack)
    thread = _start(pipe)
    filler = _take_disk(fs, leave=16 * 1024)  # room for the presses' records, none for their stills
    with caplog.at_level(logging.WARNING):
        assert pipe.request_still() and pipe.request_still()
        wait_until(lambda: pipe.stats.processed == 2 and len(pipe._saver.unsaved) == 2, what="both stills restored")
        pipe.stop()
        thread.join(30)
    assert _stills(fs / "out") == [] and "the next start takes a new still for it" in caplog.text
    for path in filler:
        path.unlink()
    pipe = _still_pipeline(tmp_path, fs / "out", samples_dir, photo_pack)
    thread = _start(pipe)
    wait_until(lambda: len(_stills(fs / "out")) == 2, what="the presses' stills at the next start")
    pipe.stop()
    thread.join(30)
    print("\nfull disk, stopped and restarted: 2 of 2 presses stored")
    assert not list(pipe.store.spool_dir.glob("*"))
