"""`kiosk-client bench join`: how fast media flows once both the appointment time and the clerk are there.

For each of N appointments: the delay from the later of (scheduled start, clerk's answer) to the
first decoded video frame at each side. The kiosk engine runs in this process (no UI), the reference
central and the clerk in child processes, all on loopback. The clerk is the aiortc clerk bot, or
(`--clerk chromium`) the real clerk console in headless Chromium: what clerks actually use, and a peer
that times its side of the connection differently (it starts DTLS as soon as its first ICE check
succeeds, before the kiosk has its answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from ..app import build_engine
from ..central.admin import CentralAdmin
from ..core.events import KioskEvent, SessionFinished, SessionRecord
from ..core.settings import AudioSettings, CameraSettings, Settings
from .bench_join_chromium import ChromiumClerkProcess
from .central_process import BotProcess, CentralProcess

ClerkKind = Literal["bot", "chromium"]

# On loopback, from the later of the start and the clerk's answer to video at both sides, whichever
# clerk answers: a citizen should see the clerk as the clerk presses "Rejoindre".
GOAL_P95_MS = 400


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _run_kiosk(settings: Settings, token: str, count: int, timeout_s: float) -> list[SessionRecord]:
    records: list[SessionRecord] = []
    done = asyncio.Event()

    def publish(event: KioskEvent) -> None:
        if isinstance(event, SessionFinished):
            records.append(event.record)
            if len(records) >= count:
                done.set()

    engine = build_engine(settings, token, publish, None, ended_screen=timedelta(seconds=0.5))
    task = asyncio.create_task(engine.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout_s)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return records


def bench_join(
    appointments: int = 10, gap_s: float = 7.0, lead_s: float = 6.0, clerk_kind: ClerkKind = "bot"
) -> dict[str, Any]:
    from ..adapters.central_http import enroll

    workdir = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    with CentralProcess(workdir / "central.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        admin.configure(join_before_seconds=3, poll_interval_seconds=1, no_show_after_seconds=60)
        kiosk_id = admin.create_kiosk("Bench kiosk", "Bench site")
        clerk = admin.create_clerk("Bench clerk", "CAF")
        t0 = datetime.now(UTC) + timedelta(seconds=lead_s)
        for i in range(appointments):
            admin.create_appointment(
                kiosk_id, clerk, "CAF", t0 + timedelta(seconds=i * gap_s), timedelta(minutes=5)
            )
        token = asyncio.run(enroll(central.url, admin.enrollment_code(kiosk_id))).device_token
        admin.close()
        clerk_process: BotProcess | ChromiumClerkProcess
        if clerk_kind == "chromium":
            clerk_process = ChromiumClerkProcess(
                central.url, clerk.token, appointments, 1.0, workdir / "clerk.json"
            )
        else:
            clerk_process = BotProcess(central.url, clerk.token, appointments, 1.0, workdir / "bot.json")
        settings = Settings(
            central_url=central.url,
            data_dir=workdir / "kiosk",
            camera=CameraSettings(device=None),
            audio=AudioSettings(microphone=None, speaker=None),
        )
        started = time.monotonic()
        records = asyncio.run(_run_kiosk(settings, token, appointments, lead_s + appointments * gap_s + 60))
        calls = {c["appointment_id"]: c for c in clerk_process.wait(timeout=30)}
        elapsed = time.monotonic() - started

    kiosk_ms: list[float] = []
    clerk_ms: list[float] = []
    slower_ms: list[float] = []
    for record in records:
        call = calls.get(record.appointment_id)
        if (
            not call
            or not call.get("answered_at")
            or not call.get("first_video_at")
            or not record.first_remote_video_at
        ):
            continue
        reference = max(record.scheduled_start.timestamp(), float(str(call["answered_at"])))
        kiosk = (record.first_remote_video_at - reference) * 1000
        at_clerk = (float(str(call["first_video_at"])) - reference) * 1000
        kiosk_ms.append(kiosk)
        clerk_ms.append(at_clerk)
        slower_ms.append(max(kiosk, at_clerk))
    return {
        "benchmark": "join",
        "clerk": clerk_kind,
        "appointments": appointments,
        "measured": len(slower_ms),
        "p50_ms": round(percentile(slower_ms, 0.5), 1),
        "p95_ms": round(percentile(slower_ms, 0.95), 1),
        "max_ms": round(max(slower_ms), 1) if slower_ms else None,
        "kiosk_p50_ms": round(percentile(kiosk_ms, 0.5), 1),
        "kiosk_p95_ms": round(percentile(kiosk_ms, 0.95), 1),
        "clerk_p50_ms": round(percentile(clerk_ms, 0.5), 1),
        "clerk_p95_ms": round(percentile(clerk_ms, 0.95), 1),
        "goal_p95_ms": GOAL_P95_MS,
        "elapsed_s": round(elapsed, 1),
        "samples_ms": [round(v, 1) for v in slower_ms],
    }


def print_json(result: dict[str, Any]) -> None:
    print(json.dumps(result))
