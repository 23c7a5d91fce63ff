"""The loop: queues, drops, stills, governor pacing, hooks; and end to end with the shipped models."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest
from conftest import assert_consistent, make_config

from deblurd.capture.camera import ReplaySource
from deblurd.capture.pacing import Pacer
from deblurd.daemon.hooks import SteadyDecision
from deblurd.daemon.pipeline import CATCH_UP_S, Pipeline
from deblurd.daemon.thermal import ThermalDecision
from deblurd.errors import CaptureTimeout
from deblurd.frames import Severity
from deblurd.output.store import ResultStore, read_index


class StubPack:
    """Routing without models, for the loop's mechanics (the model path is tested end to end below); it is both
    the pack (its facts for the status) and the router (a FrameRouter: stills take the frames' route, and there is
    no lens prior to steer by)."""

    manifest = SimpleNamespace(name="stub", version="0")
    precision, runtime = "float", "none"

    def __init__(self, delay: float = 0.0, label: str = "semi", gate=None):
        self.delay, self.label, self.gate = delay, label, gate

    def route(self, rgb, timings=None):
        time.sleep(self.delay)
        if self.gate is not None:
            _wait_for(self.gate)  # inference is "slow" until the test's condition holds, however busy the machine
        if self.label == "sharp":
            return Severity({"sharp": 1.0}, "stub"), rgb
        return Severity({self.label: 1.0}, "stub", restored={self.label: 1.0}), 255 - rgb

    route_still = route

    def expect(self, radius_px):
        assert radius_px is None, "the loop's tests configure no lens profile"


class Recorder:
    def __init__(self):
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))

    def names(self):
        return [c[0] for c in self.calls]


def Decision(mode: str = "normal", factor: float = 1.0) -> SteadyDecision:
    return SteadyDecision(mode, factor, {"temp_c": 50.0})


class Governor:
    def __init__(self, mode="normal"):
        self.decision = Decision(mode)

    def decide(self):
        return self.decision


def _pipeline(tmp_path, samples_dir, pack, governor=None, source=None, **areas):
    """A pipeline on the replay samples at 60 fps that stores every frame (no storage policy) unless told."""
    output = {"max_per_minute": 0, **areas.pop("output", {})}
    cfg = make_config(tmp_path, camera={"fps": 60, **areas.pop("camera", {})}, output=output, **areas)
    store = ResultStore(cfg.output)
    store.open()
    source = source or ReplaySource(samples_dir, cfg.camera.fps, (160, 120))
    source.open()
    notifier, indicator = Recorder(), Recorder()
    router = pack if isinstance(pack, StubPack) else None
    pipe = Pipeline(source, pack, store, cfg, governor=governor, hooks=notifier, indicator=indicator, router=router)
    return pipe, notifier, indicator


def _run_in_thread(pipe):
    thread = threading.Thread(target=pipe.run, daemon=True)
    thread.start()
    return thread


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_runs_max_frames_and_reports(tmp_path, samples_dir):
    pipe, notifier, indicator = _pipeline(tmp_path, samples_dir, StubPack(), pipeline={"max_frames": 5})
    stats = pipe.run()
    assert stats.processed == 5 and stats.frames_out == 5 and stats.routes["semi"] == {"in": 5, "out": 5, "dropped": 0}
    assert notifier.names()[0] == "ready" and notifier.names()[-1] == "stopping"
    assert "watchdog" in notifier.names() and any(c[0] == "status" and "fps" in c[1] for c in notifier.calls)
    assert ("set_state", "running") in indicator.calls
    state = json.loads((tmp_path / "out" / "status.json").read_text())
    assert state["frames_out"] == 5 and state["last_result"]["id"] == 5 and state["disk"]["full"] is None
    assert len(assert_consistent(tmp_path / "out")) == 5


def test_slow_inference_drops_oldest_continuous_frames(tmp_path, samples_dir):
    pack = StubPack()
    pipe, _, _ = _pipeline(tmp_path, samples_dir, pack, pipeline={"max_frames": 4, "queue_size": 1})
    pack.gate = lambda: pipe.stats.dropped.get("queue_full", 0) >= pipe.stats.processed + 1
    stats = pipe.run()
    assert stats.dropped.get("queue_full", 0) > 0
    seqs = [json.loads((tmp_path / "out" / e["files"]["sidecar"]).read_text())["frame_seq"]
            for e in read_index(tmp_path / "out")]
    assert seqs == sorted(seqs) and seqs[-1] - seqs[0] > len(seqs) - 1


def test_stills_never_drop_and_a_full_still_queue_refuses(tmp_path, samples_dir):
    pipe, _, indicator = _pipeline(tmp_path, samples_dir, StubPack(delay=0.05), pipeline={"still_queue_size": 3})
    pipe.set_continuous(False)
    assert [pipe.request_still() for _ in range(4)] == [True, True, True, False]
    assert pipe.stats.refused == {"still_queue_full": 1} and pipe.stats.dropped == {}
    thread = _run_in_thread(pipe)
    _wait_for(lambda: pipe.stats.frames_out == 3)
    pipe.stop()
    thread.join(5)
    entries = read_index(tmp_path / "out")
    assert [e["kind"] for e in entries] == ["still"] * 3
    assert ("set_state", "capture") in indicator.calls and ("set_state", "paused") in indicator.calls


def test_governor_pause_stops_continuous_but_honours_stills(tmp_path, samples_dir):
    governor = Governor("pause")
    pipe, notifier, indicator = _pipeline(tmp_path, samples_dir, StubPack(), governor=governor)
    thread = _run_in_thread(pipe)
    _wait_for(lambda: ("set_state", "paused") in indicator.calls)
    assert pipe.stats.frames_in == 0
    assert pipe.request_still()
    _wait_for(lambda: pipe.stats.frames_out == 1)
    governor.decision = Decision("critical")
    assert pipe.request_still()
    _wait_for(lambda: pipe.stats.refused.get("critical") == 1)
    governor.decision = Decision("normal")
    _wait_for(lambda: pipe.stats.frames_out >= 3)
    pipe.stop()
    thread.join(5)
    entries = read_index(tmp_path / "out")
    assert entries[0]["kind"] == "still" and {e["kind"] for e in entries[1:]} == {"continuous"}
    sidecar = json.loads((tmp_path / "out" / entries[0]["files"]["sidecar"]).read_text())
    assert sidecar["thermal"] == {"temp_c": 50.0}
    assert ("set_state", "paused") in indicator.calls


@pytest.mark.parametrize("decision,allows", [
    (ThermalDecision("normal", 1.0, {}), (True, True)), (ThermalDecision("slow", 0.5, {}), (True, True)),
    (ThermalDecision("pause", 0.0, {}), (False, True)), (ThermalDecision("critical", 0.0, {}), (False, False)),
    (SteadyDecision(), (True, True)), (SteadyDecision("pause"), (False, True)),
    (SteadyDecision("critical"), (False, False))])
def test_the_pipeline_asks_the_decision_what_it_allows(decision, allows):
    assert (decision.allows_continuous, decision.allows_still) == allows


def test_slow_mode_lowers_the_frame_rate():
    """The pacing itself, on a virtual clock: 60 fps at factor 0.05 is one frame every 1/3 s."""
    pacer = Pacer(60.0, now=100.0, catch_up_s=CATCH_UP_S)
    due = []
    now = 100.0
    for _ in range(6):
        now += max(0.0, pacer.wait_s(now))
        due.append(round(now - 100.0, 4))
        pacer.advance(now, 0.05)
    assert due == [0.0, 0.3333, 0.6667, 1.0, 1.3333, 1.6667]
    pacer.advance(now + 10.0, 1.0)  # a long stall is not caught up with a burst of frames
    assert pacer.wait_s(now + 10.0) == pytest.approx(-1.0 + 1 / 60)


class StalledSource(ReplaySource):
    reads = 0

    def read(self, timeout):
        self.reads += 1
        time.sleep(0.01)
        raise CaptureTimeout("no frame within 0.5 s: closed the camera, reopening in 1 s")


def test_stalled_camera_reports_the_error_and_stops_watchdog_pings(tmp_path, samples_dir, caplog):
    source = StalledSource(samples_dir, 60)
    pipe, notifier, indicator = _pipeline(tmp_path, samples_dir, StubPack(), source=source,
                                          service={"status_interval_s": 0.5})
    thread = _run_in_thread(pipe)
    status = tmp_path / "out" / "status.json"
    _wait_for(lambda: status.exists() and "reopening" in status.read_text() and source.reads >= 20)
    pipe.stop()
    thread.join(5)
    assert "watchdog" not in notifier.names()
    assert ("set_state", "error") in indicator.calls
    assert "reopening" in pipe.last_error["message"]
    assert caplog.text.count("reopening") == 1  # one line, not one per failed read


def test_disk_full_keeps_running_without_storing(tmp_path, samples_dir, monkeypatch):
    pipe, _, indicator = _pipeline(tmp_path, samples_dir, StubPack(), pipeline={"max_frames": 3})
    monkeypatch.setattr(pipe.store, "free_bytes", lambda: 1_000_000)
    stats = pipe.run()
    assert stats.processed == 3 and stats.frames_out == 0 and stats.dropped["disk_full"] == 3
    assert stats.routes["semi"]["dropped"] == 3 and ("set_state", "error") in indicator.calls
    assert read_index(tmp_path / "out") == []


def test_end_to_end_with_shipped_models(tmp_path, samples_dir, photo_pack):
    pipe, notifier, _ = _pipeline(tmp_path, samples_dir, photo_pack, pipeline={"max_frames": 6},
                                  camera={"width": 640, "height": 480})
    pipe.source.size = (640, 480)
    stats = pipe.run()
    assert stats.frames_out == 6
    out = tmp_path / "out"
    entries = assert_consistent(out)
    assert len(entries) == 6 and (out / "latest.jpg").is_file()
    for entry in entries:
        sidecar = json.loads((out / entry["files"]["sidecar"]).read_text())
        assert sidecar["severity"] in ("sharp", "semi", "heavy") and abs(sum(sidecar["scores"].values()) - 1) < 0.05
        assert sidecar["model"].startswith("photo/classifier") and sidecar["size"] == [640, 480]
        assert {"classify_s", "restore_s", "queue_s"} <= set(sidecar["timings"])
        assert ("restored" in entry["files"]) == (sidecar["severity"] != "sharp") == (not sidecar["passthrough"])
        assert (samples_dir / sidecar["camera"]["file"]).is_file(), "a replayed frame names the file it came from"
    assert "watchdog" in notifier.names()


def test_a_store_failure_stops_the_daemon_with_its_error(tmp_path, samples_dir, monkeypatch):
    from deblurd.output.store import StoreError

    pipe, notifier, _ = _pipeline(tmp_path, samples_dir, StubPack(), pipeline={"queue_size": 1})

    def broken(result):
        raise StoreError("cannot write results to /x (EIO): check the disk")

    monkeypatch.setattr(pipe.store, "save", broken)
    with pytest.raises(StoreError, match="EIO"):
        pipe.run()
    assert notifier.names()[-1] == "stopping"


class DeadSource(ReplaySource):
    def read(self, timeout):
        from deblurd.errors import CameraError

        raise CameraError("the camera is gone (unplugged?)")


def test_a_fatal_capture_error_stops_the_pipeline_with_a_final_status(tmp_path, samples_dir):
    pipe, notifier, _ = _pipeline(tmp_path, samples_dir, StubPack(), source=DeadSource(samples_dir, 60))
    with pytest.raises(Exception, match="camera failed: the camera is gone"):
        pipe.run()  # before: the store thread never got its end marker and run() waited for ever
    state = json.loads((tmp_path / "out" / "status.json").read_text())
    assert state["state"] == "stopped" and state["exit_reason"].startswith("fatal error in the capture thread")
    assert notifier.names()[-1] == "stopping"


def test_final_status_says_stopped_and_why(tmp_path, samples_dir):
    pipe, notifier, _ = _pipeline(tmp_path, samples_dir, StubPack(), pipeline={"max_frames": 3})
    pipe.run()
    state = json.loads((tmp_path / "out" / "status.json").read_text())
    assert state["state"] == "stopped" and state["exit_reason"] == "max_frames = 3 done"
    assert ("status", "stopped: max_frames = 3 done") in notifier.calls


def test_the_storage_policy_counts_what_it_did_not_store(tmp_path, samples_dir):
    pipe, _, _ = _pipeline(tmp_path, samples_dir, StubPack(), pipeline={"max_frames": 9},
                           output={"store_every": 3})
    stats = pipe.run()
    assert stats.processed == 9 and stats.frames_out == 3 and stats.not_stored == {"store_every": 6}
    assert len(read_index(tmp_path / "out")) == 3 and pipe.state()["not_stored"] == {"store_every": 6}
