"""`kiosk-client bench control`: remote-control input latency and the live form view's stream.

The kiosk side runs here — the engine, an offscreen form view at 1280×800 with its streamer — and
plays the citizen (it accepts the clerk's request). The clerk runs in a child process
(bench_control_clerk) so the kiosk's CPU figure is its own. Both stamp events with the wall clock of
this one machine:
- input latency: clerk sends (stamp) → the event is delivered to the form view (stamp);
- stream: page background changes (stamp) → first clerk frame showing the new colour (stamp);
  fps = form-view frames the clerk decoded per second.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .bench_join import percentile

COLOURS = [(230, 40, 40), (40, 200, 40), (40, 40, 230), (230, 230, 40), (40, 220, 220), (200, 40, 200)]  # RGB


def bench_control(inputs: int = 1000, interval_s: float = 0.01, timeout_s: float = 120.0) -> dict[str, Any]:
    from ..adapters.central_http import enroll
    from ..central.admin import CentralAdmin
    from ..ui.control_bench import run_kiosk_side  # the kiosk side needs Qt: it lives in the ui package
    from .central_process import CentralProcess

    workdir = Path(tempfile.mkdtemp(prefix="kiosk-bench-control-"))
    with CentralProcess(workdir / "central.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        admin.configure(join_before_seconds=5, poll_interval_seconds=1)
        kiosk_id = admin.create_kiosk("Bench kiosk", "Bench site")
        clerk = admin.create_clerk("Bench clerk", "CAF")
        start = datetime.now(UTC) + timedelta(seconds=2)
        appointment = admin.create_appointment(
            kiosk_id,
            clerk,
            "CAF",
            start,
            allowed_origins=[central.url],
            start_url=f"{central.url}/demo-form/",
        )
        token = asyncio.run(enroll(central.url, admin.enrollment_code(kiosk_id))).device_token
        admin.close()
        return run_kiosk_side(
            central.url, token, clerk.token, str(appointment["id"]), workdir, inputs, interval_s, timeout_s
        )


def summarise(
    clerk: dict[str, Any],
    injected: dict[int, float],
    changes: list[tuple[float, tuple[int, int, int]]],
    window: dict[str, float],
    grab_ms: float,
) -> dict[str, Any]:
    delivered = {
        int(seq): (injected[int(seq)] - sent) * 1000
        for seq, sent in clerk["sent"].items()
        if int(seq) in injected
    }
    latencies = list(delivered.values())
    # The kiosk merges pointer moves still waiting behind a newer one (core/input_queue.py): under
    # load, fewer moves arrive than were sent, by design. Text must never be missing.
    missing = [int(seq) for seq in clerk["sent"] if int(seq) not in injected]
    # Odd sequence numbers are pointer moves, even ones text (checked against citizen-only fields first).
    pointer = [ms for seq, ms in delivered.items() if seq % 2]
    text = [ms for seq, ms in delivered.items() if not seq % 2]
    frames: list[list[float]] = clerk["frames"]
    delays: list[float] = []
    for at, (r, g, b) in changes:
        for t, fb, fg, fr in frames:
            if t >= at and abs(fr - r) < 30 and abs(fg - g) < 30 and abs(fb - b) < 30:
                delays.append((t - at) * 1000)
                break
    fps = 0.0
    if len(frames) > 1:
        in_window = [f for f in frames if f[0] >= frames[0][0] + 1.0]  # after the first second
        if len(in_window) > 1:
            fps = (len(in_window) - 1) / (in_window[-1][0] - in_window[0][0])
    return {
        "benchmark": "control",
        "input": {
            "count": len(latencies),
            "p50_ms": round(percentile(latencies, 0.5), 2),
            "p95_ms": round(percentile(latencies, 0.95), 2),
            "max_ms": round(max(latencies), 2) if latencies else None,
            "refused": clerk.get("errors", 0),
            "refused_codes": clerk.get("error_codes", []),
            "moves_merged": sum(1 for seq in missing if seq % 2),
            "text_missing": sum(1 for seq in missing if not seq % 2),
            "pointer_p95_ms": round(percentile(pointer, 0.95), 2),
            "text_p95_ms": round(percentile(text, 0.95), 2),
            "goal_p95_ms": 10,
        },
        "stream": {
            "width": 1280,
            "height": 800,
            "fps": round(fps, 1),
            "changes": len(changes),
            "changes_seen": len(delays),
            "p50_ms": round(percentile(delays, 0.5), 1),
            "p95_ms": round(percentile(delays, 0.95), 1),
            "cpu_percent": round(window.get("cpu", float("nan")), 1),
            "grab_ms": round(grab_ms, 2),
            "goal_fps": 15,
            "goal_p95_ms": 150,
        },
    }
