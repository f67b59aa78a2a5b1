"""End to end: a booking made in RDV Service Public reaches the citizen's kiosk. A recorded webhook,
signed with the shared secret, is POSTed to the reference central in its own process; the real kiosk
engine (aiortc, httpx) finds the appointment in its schedule and joins its call by itself, which the
clerk bot answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kiosk_client.adapters.central_http import enroll
from kiosk_client.central.admin import CentralAdmin
from kiosk_client.core.events import StateChanged
from kiosk_client.core.session import EndReason
from kiosk_client.tools.central_process import CentralProcess
from kiosk_client.tools.clerk_bot import ClerkBot

from .fake_rdv_service_public import sign, webhook
from .kiosk_rig import Recorder, make_engine, wait_for

pytestmark = pytest.mark.e2e

SECRET = "whsec-e2e-9c1d7e3a5b"


def scheduled(recorder: Recorder, appointment_id: str) -> bool:
    return any(
        isinstance(e, StateChanged) and any(a.id == appointment_id for a in e.snapshot.today)
        for e in list(recorder.events)
    )


async def test_a_signed_rdv_service_public_webhook_becomes_a_call_the_kiosk_joins(tmp_path: Path) -> None:
    with CentralProcess(tmp_path / "central.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        admin.configure(join_before_seconds=2, poll_interval_seconds=1, no_show_after_seconds=60)
        kiosk_id = admin.create_kiosk("Borne 1", "France Services de Mauriac")
        clerk = admin.create_clerk("Mme Martin", "CAF")
        code = admin.enrollment_code(kiosk_id)
        admin.close()
        async with httpx.AsyncClient(base_url=central.url + "/api/v1") as client:
            configured = await client.put(
                "/admin/bookings/config",
                headers={"Authorization": f"Bearer {central.admin_token}"},
                json={
                    "rdv_service_public": {
                        "webhook_secret": SECRET,
                        "kiosks": [{"agent": "Guichet 1", "kiosk_id": kiosk_id}],
                        "clerks": [{"agent": 275, "clerk_id": clerk.clerk_id}],
                    }
                },
            )
            assert configured.status_code == 200, configured.text
            token = (await enroll(central.url, code)).device_token
            recorder = Recorder()
            engine = make_engine(central.url, token, tmp_path, recorder)
            run = asyncio.create_task(engine.run())
            bot = ClerkBot(central.url, clerk.token, hold_s=1.5)
            try:
                # Booked in RDV Service Public while the kiosk runs: it starts in a few seconds.
                start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
                body = webhook("webhook_rdv_created.json", starts_at=start, at=datetime.now(UTC))
                hooked = await client.post(
                    "/bookings/rdv-service-public/webhook",
                    content=body,
                    headers={"Content-Type": "application/json; charset=utf-8", "X-Lapin-Signature": sign(SECRET, body)},
                )  # fmt: skip
                assert hooked.status_code == 200 and hooked.json()["outcome"] == "created", hooked.text
                appointment_id = hooked.json()["appointment_id"]
                await wait_for(lambda: scheduled(recorder, appointment_id), 10)
                report = await asyncio.wait_for(bot.serve_appointment(appointment_id, start), 30)
                await wait_for(lambda: bool(recorder.records()), 10)
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
                await bot.aclose()
    [record] = recorder.records()
    assert record.appointment_id == appointment_id
    assert record.offer_posted_at is not None and record.offer_posted_at < start.timestamp()  # nobody clicked
    assert report.answered_at is not None and report.video_frames > 5 and record.remote_video_frames > 5
    assert record.end_reason is EndReason.CLERK_HUNG_UP
