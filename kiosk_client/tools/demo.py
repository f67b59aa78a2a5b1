"""`kiosk-client demo`: the reference central and the kiosk on loopback, an appointment soon."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..adapters.camera_opencv import probe_camera
from ..adapters.central_http import enroll
from ..adapters.secrets_keyring import MemorySecrets
from ..app import build_engine
from ..central.admin import CentralAdmin
from ..core.events import SessionRecord
from ..core.ports import VideoSink
from ..core.settings import AudioSettings, CameraSettings, Settings
from .central_process import BotProcess, CentralProcess
from .sane_test_scanner import sane_test_folder

log = logging.getLogger(__name__)


def iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp is not None else None


def delay_ms(reference: float | None, event: float | None) -> float | None:
    if reference is None or event is None:
        return None
    return round((event - reference) * 1000, 1)


def build_report(record: SessionRecord | None, bot_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo's JSON report; every key is documented in the README."""
    if record is None:
        return {"session": None, "media_both_ways": False}
    bot = next((c for c in bot_calls if c.get("appointment_id") == record.appointment_id), {})
    answered = bot.get("answered_at") or record.answer_received_at
    reference = max(record.scheduled_start.timestamp(), answered) if answered else None
    clerk_frames = int(bot.get("video_frames") or 0)
    return {
        "appointment_id": record.appointment_id,
        "scheduled_start": record.scheduled_start.isoformat(),
        "kiosk_joined_at": iso(record.offer_posted_at),
        "clerk_answered_at": iso(answered),
        "kiosk_first_video_at": iso(record.first_remote_video_at),
        "kiosk_first_audio_at": iso(record.first_remote_audio_at),
        "clerk_first_video_at": iso(bot.get("first_video_at")),
        "clerk_first_audio_at": iso(bot.get("first_audio_at")),
        "kiosk_join_delay_ms": delay_ms(reference, record.first_remote_video_at),
        "clerk_join_delay_ms": delay_ms(reference, bot.get("first_video_at")),
        "kiosk_frames_received": record.remote_video_frames,
        "clerk_frames_received": clerk_frames,
        "kiosk_audio_frames_received": record.remote_audio_frames,
        "clerk_audio_frames_received": int(bot.get("audio_frames") or 0),
        "end_reason": record.end_reason.value,
        "media_both_ways": record.remote_video_frames > 0
        and clerk_frames > 0
        and record.remote_audio_frames > 0
        and int(bot.get("audio_frames") or 0) > 0,
    }


def camera_device(choice: str) -> int | str | None:
    if choice == "none":
        return None
    if choice == "auto":
        return 0 if probe_camera(0) == "ok" else None
    return int(choice) if choice.isdigit() else choice


def run_demo(args: argparse.Namespace) -> int:
    from ..ui.app import run_kiosk_app  # Qt is only loaded for commands that show a window

    workdir = Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    with CentralProcess(workdir / "central.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        admin.configure(
            join_before_seconds=min(10, args.lead_seconds), poll_interval_seconds=2, no_show_after_seconds=300
        )
        kiosk_id = admin.create_kiosk("Borne 1", "France Services de Saint-Amand-en-Puisaye")
        caf = admin.create_clerk("Mme Martin", "CAF")
        cpam = admin.create_clerk("M. Durand", "CPAM")
        start = datetime.now(UTC) + timedelta(seconds=args.lead_seconds)
        # The demo form on the reference central stands in for the administration's site.
        appointment = admin.create_appointment(
            kiosk_id,
            caf,
            "CAF — allocations familiales",
            start,
            allowed_origins=[central.url],
            start_url=f"{central.url}/demo-form/",
        )
        admin.create_appointment(kiosk_id, cpam, "CPAM — assurance maladie", start + timedelta(hours=1))
        token = asyncio.run(enroll(central.url, admin.enrollment_code(kiosk_id))).device_token
        admin.close()

        print(f"Reference central: {central.url}  (API: {central.url}/api/v1/openapi.yaml)")
        print(f"Clerk console:     {central.url}/clerk#token={caf.token}")
        print(f"Appointment {appointment['id']} starts at {start.astimezone():%H:%M:%S}", flush=True)

        bot = (
            BotProcess(central.url, caf.token, 1, args.hold_seconds, workdir / "bot.json")
            if args.clerk_bot
            else None
        )
        settings = Settings(
            central_url=central.url,
            data_dir=workdir / "kiosk",
            language=args.language,
            fullscreen=False,
            camera=CameraSettings(device=camera_device(args.camera)),
            audio=AudioSettings(microphone=args.microphone, speaker=args.speaker),
        )
        records: list[SessionRecord] = []

        if args.scanner == "test":
            # No scanner needed to try the papers: SANE's virtual "test" scanner (flatbed and feeder).
            os.environ["SANE_CONFIG_DIR"] = str(sane_test_folder(workdir))
        outbox_key = MemorySecrets().outbox_key() if args.scanner != "none" else None  # the demo's own

        def make_engine(publish: Any, sink: VideoSink, form: Any, frames: Any) -> Any:
            return build_engine(
                settings,
                token,
                publish,
                sink,
                form,
                frames,
                ended_screen=timedelta(seconds=4),
                outbox_key=outbox_key,
            )

        try:
            run_kiosk_app(
                make_engine,
                language=args.language,
                fullscreen=args.fullscreen,
                exit_after_session=args.exit_after_session,
                on_session_finished=records.append,
                max_seconds=args.timeout,
                accessibility=settings.accessibility,
            )
        finally:
            bot_calls = bot.wait(timeout=20) if bot is not None else []
        record = records[0] if records else None
        report = build_report(record, bot_calls)
        if args.report:
            Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        if record is None:
            print("no session took place before the time limit", file=sys.stderr)
            return 1
        if args.clerk_bot and not report["media_both_ways"]:
            print("media did not flow both ways", file=sys.stderr)
            return 2
        return 0
