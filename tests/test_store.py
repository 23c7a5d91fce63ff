"""Output layout, atomic files, index, retention and the full-disk guard."""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_consistent, make_result

from deblurd.config import OutputConfig
from deblurd.output.store import INDEX_NAME, AtomicWriter, ResultStore, StoreError


def _store(tmp_path: Path, retry_s: float = 5.0, **cfg) -> ResultStore:
    store = ResultStore(OutputConfig(dir=tmp_path / "out", **{"min_free_mb": 10, **cfg}), retry_s=retry_s)
    store.open()
    return store


def test_layout_sidecar_index_and_latest(tmp_path):
    store = _store(tmp_path)
    restored = store.save(make_result(1, "heavy"))
    sharp = store.save(make_result(2, "sharp", kind="still"))
    out = tmp_path / "out"
    day = time.strftime("%Y-%m-%d")
    assert restored.files["input"].startswith(f"{day}/") and restored.files["input"].endswith("-000001-input.jpg")
    assert restored.files["restored"].endswith("-000001-restored.jpg")
    assert set(sharp.files) == {"input", "sidecar"} and sharp.passthrough
    sidecar = json.loads((out / restored.files["sidecar"]).read_text())
    assert sidecar["severity"] == "heavy" and sidecar["scores"]["heavy"] == 0.8 and sidecar["model"] == "photo/x@1"
    assert sidecar["lens_position"] == 1.5 and sidecar["thermal"] == {"temp_c": 55.0}
    assert sidecar["kind"] == "continuous"
    assert sidecar["timings"]["classify_s"] == 0.01 and not sidecar["passthrough"]
    assert json.loads((out / sharp.files["sidecar"]).read_text())["passthrough"] is True
    assert [e["id"] for e in assert_consistent(out)] == [1, 2]
    latest = cv2.cvtColor(cv2.imread(str(out / "latest.jpg")), cv2.COLOR_BGR2RGB)
    assert np.abs(latest.astype(int) - make_result(2, "sharp").frame.pixels).mean() < 20


def test_ids_continue_after_a_restart_and_png_without_input(tmp_path):
    _store(tmp_path).save(make_result(1))
    store = _store(tmp_path, image_format="png", save_input=False)
    entry = store.save(make_result(1))
    assert entry.id == 2 and set(entry.files) == {"restored", "sidecar"}
    assert entry.files["restored"].endswith(".png")
    restored = cv2.imread(str(tmp_path / "out" / entry.files["restored"]))
    np.testing.assert_array_equal(cv2.cvtColor(restored, cv2.COLOR_BGR2RGB), make_result(1).restored)


def test_open_clears_crash_leftovers(tmp_path):
    store = _store(tmp_path)
    store.save(make_result(1))
    out = tmp_path / "out"
    day = next(p for p in out.iterdir() if p.is_dir())
    (day / ".120000-000009-input.jpg.tmp-123").write_bytes(b"half a jp")
    with open(out / INDEX_NAME, "a") as f:
        f.write('{"id": 2, "files": {"inp')
    store = _store(tmp_path)
    assert [e.id for e in store.entries] == [1]
    store.save(make_result(3))
    assert [e["id"] for e in assert_consistent(out)] == [1, 2]


def test_output_folder_not_writable(tmp_path):
    (tmp_path / "a-file").write_text("x")
    store = ResultStore(OutputConfig(dir=tmp_path / "a-file" / "out"))
    with pytest.raises(StoreError, match="not writable.*--output") as err:
        store.open()
    assert err.value.exit_code == 73


def test_retention_by_count_removes_continuous_before_stills(tmp_path):
    store = _store(tmp_path, max_results=3)
    store.save(make_result(1, kind="still", when=time.time() - 5000))
    for seq in range(2, 7):
        store.save(make_result(seq, when=time.time() - 4000 + seq))
    entries = assert_consistent(tmp_path / "out")
    assert len(entries) <= 3
    assert entries[0]["kind"] == "still" and entries[-1]["id"] == 6


def test_retention_by_age(tmp_path):
    now = [time.time()]
    store = ResultStore(OutputConfig(dir=tmp_path / "out", keep_days=1), clock=lambda: now[0])
    store.open()
    store.save(make_result(1, when=now[0] - 3 * 86400))
    store.save(make_result(2, when=now[0] - 10))
    now[0] += 120
    store.save(make_result(3, when=now[0]))
    assert [e["id"] for e in assert_consistent(tmp_path / "out")] == [2, 3]


def test_below_floor_with_nothing_left_stops_writing_and_resumes(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    store = _store(tmp_path, min_free_mb=10, retry_s=0)
    monkeypatch.setattr(store, "free_bytes", lambda: 1_000_000)
    assert store.save(make_result(1)) is None and store.save(make_result(2)) is None
    assert "free space 1.0 MB is below output.min_free_mb = 10 MB" in store.full_reason
    assert caplog.text.count("not writing results") == 1
    monkeypatch.setattr(store, "free_bytes", lambda: 500_000_000)
    assert store.save(make_result(3)).id == 1 and store.full_reason is None
    assert "writing results to" in caplog.text and "again" in caplog.text


class FailingWriter(AtomicWriter):
    """The seam: the Nth write runs out of space part-way through."""

    def __init__(self, fail_at: int):
        self.calls, self.fail_at = 0, fail_at

    def _write_all(self, fd, data):
        self.calls += 1
        if self.calls == self.fail_at:
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        super()._write_all(fd, data)


def test_enospc_mid_result_leaves_nothing_partial_and_resumes(tmp_path, caplog):
    store = _store(tmp_path)
    store.save(make_result(1))
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    store.writer = FailingWriter(fail_at=2)  # input written, restored runs out of space
    assert store.save(make_result(2)) is None
    assert "disk is full" in store.full_reason and "still running" in caplog.text
    after = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    store.writer = AtomicWriter()
    store.retry_s = 0
    store.save(make_result(3))  # still inside the retry interval set by the failure: skipped without trying
    store._retry_at = 0
    assert store.save(make_result(4)).id == 3 and store.full_reason is None  # id 2 was burnt by the failed write
    assert [e["id"] for e in assert_consistent(tmp_path / "out")] == [1, 3]


def test_a_result_costs_one_fsync_per_file_plus_its_folder_and_index(tmp_path, monkeypatch):
    store = _store(tmp_path)
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    store.save(make_result(1, "heavy"))  # a new day folder: its parent is fsynced once too
    calls.clear()
    store.save(make_result(2, "heavy"))
    assert len(calls) == 5  # input, restored, sidecar, the day folder, the index (was 9)
    calls.clear()
    store.save(make_result(3, "sharp"))
    assert len(calls) == 4  # was 7
    out = tmp_path / "out"
    assert (out / "latest.jpg").samefile(out / store.entries[-1].files["input"])  # a link, not a copy


def test_open_indexes_results_a_kill_cut_off_and_removes_cut_short_ones(tmp_path, caplog):
    store = _store(tmp_path)
    for seq in (1, 2, 3):
        store.save(make_result(seq, "heavy"))
    out = tmp_path / "out"
    lines = (out / INDEX_NAME).read_text().splitlines()
    (out / INDEX_NAME).write_text(lines[0] + "\n")  # the kill came before results 2 and 3 got their lines
    day = out / store.entries[0].files["sidecar"].split("/")[0]
    (day / "120000-000007-input.jpg").write_bytes((out / store.entries[0].files["input"]).read_bytes())
    store = _store(tmp_path)  # and result 7 had only its input written
    assert [e["id"] for e in assert_consistent(out)] == [1, 2, 3]
    assert not (day / "120000-000007-input.jpg").exists()
    assert "recovered 2 result(s)" in caplog.text and "120000-000007-input.jpg" in caplog.text
    assert store.save(make_result(4)).id == 8  # past the highest id on disk, not only in the index


def test_status_file_shows_what_the_floor_removed(tmp_path):
    from deblurd.commands.status import format_status

    state = {"updated": 10.0, "state": "running", "interval_s": 5,
             "disk": {"dir": "/o", "free_mb": 90.0, "min_free_mb": 100, "full": None, "removed_for_space": 3,
                      "last_space_removal": {"removed": 3, "freed_mb": 0.3, "ids": [4, 6]}}}
    text = format_status(state, now=11.0)
    assert "(floor 100 MB)" in text and "removed for space this run: 3 result(s)" in text


def _policymake_result(seq: int, label: str = "semi", kind: str = "continuous", noisy: bool = True):
    return make_result(seq, label, kind=kind, noisy=noisy)


def test_storage_policy_every_nth_sharp_and_unchanged():
    from deblurd.output.storage_policy import StoragePolicy

    def kept(policy, results):
        out = []
        for r in results:
            if policy.skip_reason(r) is None:
                policy.stored(r)
                out.append(r.frame.seq)
        return out

    every_third = StoragePolicy(OutputConfig(store_every=3, max_per_minute=0))
    assert kept(every_third, [_policymake_result(i) for i in range(1, 8)]) == [1, 4, 7]
    no_sharp = StoragePolicy(OutputConfig(store_sharp=False, max_per_minute=0))
    assert kept(no_sharp, [_policymake_result(1, "sharp"), _policymake_result(2),
                           _policymake_result(3, "sharp", "still")]) == [2, 3]
    still = make_result(5, noisy=False)
    changed = StoragePolicy(OutputConfig(min_change=4.0, max_per_minute=0))
    assert kept(changed, [still, make_result(5, noisy=False), make_result(6, noisy=True)]) == [5, 6]


def test_storage_policy_rate_limit_on_a_virtual_clock():
    from deblurd.output.storage_policy import BURST_MINUTES, StoragePolicy

    now = [0.0]
    policy = StoragePolicy(OutputConfig(max_per_minute=2), clock=lambda: now[0])
    stored = 0
    for second in range(3600):  # an hour at 10 fps
        now[0] = float(second)
        for sub in range(10):
            result = _policymake_result(second * 10 + sub, noisy=False)
            if policy.skip_reason(result) is None:
                policy.stored(result)
                stored += 1
    assert stored == 2 * BURST_MINUTES + 2 * 60 - 1  # the allowance at start, then 2 a minute
    assert policy.skip_reason(_policymake_result(1, kind="still")) is None  # stills are never limited


def test_repeat_limiter_logs_once_then_a_count(caplog):
    import logging as logging_

    from deblurd.log_limit import RepeatLimiter

    caplog.set_level(logging_.INFO)
    now = [0.0]
    limiter = RepeatLimiter(logging_.getLogger("test.limiter"), interval_s=60, clock=lambda: now[0])
    for second in range(130):
        now[0] = float(second)
        limiter.log(logging_.ERROR, "disk", "disk full")
    limiter.clear("disk", "writing again")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["disk full", "disk full (60 time(s) in the last 60 s)",
                        "disk full (60 time(s) in the last 60 s)", "writing again (9 repeat(s) since the last line)"]
