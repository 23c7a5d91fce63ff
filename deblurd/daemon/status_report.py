"""What goes into status.json (what `deblurd status` shows), the one-line status the service manager shows, and
the lines the daemon says on a terminal (ready, progress, summary), shaped from the pipeline's counters and facts;
the pipeline writes them. The counters add up as stats.py's docstring says (frames_in = frames_out + not_stored +
dropped + left_at_stop + in_flight)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from deblurd.daemon.hooks import Decision
from deblurd.daemon.lens_steering import LensSteering
from deblurd.daemon.stats import Stats
from deblurd.output.layout import GALLERY_INDEX
from deblurd.output.state_file import RUNNING, STOPPED
from deblurd.restore.inference import ModelPack


def counters(stats: Stats) -> dict[str, Any]:
    """A consistent snapshot of the counters and the mean time of each stage per processed frame."""
    n = max(stats.processed, 1)
    with stats.lock:
        return {"frames_in": stats.frames_in, "frames_out": stats.frames_out,
                "routes": {k: dict(v) for k, v in stats.routes.items()}, "dropped": dict(stats.dropped),
                "not_stored": dict(stats.not_stored), "left_at_stop": dict(stats.left_at_stop),
                "in_flight": stats.in_flight(), "refused": dict(stats.refused),
                "mean_timings_s": {k: round(v / n, 4) for k, v in stats.stage_totals.items()}}


def status(*, stopped: bool, exit_reason: str | None, started: float, interval_s: float, mode: str, source: str,
           lens: LensSteering, pack: ModelPack, stats: Stats, decision: Decision,
           last_result: dict[str, Any] | None, last_error: dict[str, Any] | None,
           disk: dict[str, Any]) -> dict[str, Any]:
    """The status file's content: state, exit reason, process, mode, lens, models, rate, counters, readings, the
    last result and error, and the disk."""
    now = time.time()
    return {"state": STOPPED if stopped else RUNNING, "exit_reason": exit_reason,
            "pid": os.getpid(), "started": started, "updated": now, "uptime_s": round(now - started, 1),
            "interval_s": interval_s, "mode": mode, "source": source, "lens_position": lens.position,
            "expected_blur_px": None if lens.expected_radius is None else round(lens.expected_radius, 2),
            "models": f"{pack.manifest.name} v{pack.manifest.version} {pack.precision} ({pack.runtime})",
            "fps": round(stats.fps(), 3), **counters(stats), "readings": dict(decision.readings),
            "last_result": last_result, "last_error": last_error, "disk": disk}


def _temperature(state: dict[str, Any]) -> str:
    return next((f"{v:.1f} °C" for k, v in state["readings"].items()
                 if "temp" in k and isinstance(v, (int, float))), "temperature n/a")


def _counts(counts: dict[str, int]) -> str:
    """`3 (queue_full 2, disk_full 1)`, or `0`."""
    total = sum(counts.values())
    return f"{total} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})" if total else "0"


def summary(state: dict[str, Any]) -> str:
    """The one line the service manager shows (systemd's STATUS=) for a status shaped by status()."""
    if state["state"] == STOPPED:
        return f"stopped: {state['exit_reason']}"
    return (f"{state['mode']}, {state['fps']:.1f} fps, {_temperature(state)}, {state['frames_out']} stored, "
            f"{sum(state['dropped'].values())} dropped")


def ready_line(output_dir: Path) -> str:
    """What the daemon says once frames flow: where the results go and how to look at them."""
    return f"ready: results in {output_dir}, open {output_dir / GALLERY_INDEX}"


def progress_line(state: dict[str, Any]) -> str:
    """The periodic line on a terminal: every counter of the identity, the rate and the temperature."""
    return (f"{state['mode']}: {state['frames_in']} frames in, {state['frames_out']} stored, "
            f"{_counts(state['not_stored'])} not stored by the policy, {_counts(state['dropped'])} dropped, "
            f"{state['in_flight']} in flight; {state['fps']:.1f} fps, {_temperature(state)}")


def stop_line(state: dict[str, Any]) -> str:
    """The summary when the daemon stops: why, and where every frame that came in went."""
    refused = f"; still requests refused {_counts(state['refused'])}" if state["refused"] else ""
    return (f"stopped ({state['exit_reason']}) after {state['uptime_s']:.0f} s: {state['frames_in']} frames in, "
            f"{state['frames_out']} stored in {state['disk']['dir']}, {_counts(state['not_stored'])} not stored by "
            f"the policy, {_counts(state['dropped'])} dropped, {_counts(state['left_at_stop'])} left at the stop"
            f"{refused}")
