"""A finished appointment stays finished: once its call was hung up (by either side, or the kiosk
gave up), the reference central refuses a new offer and any answer with a clear error, lists it as
finished for the clerk, and a kiosk restarted later ends its session instead of calling again. The
clerk's listing also says who the appointment is for, when the central knows the citizen's name."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kiosk_client.adapters.central_http import HttpCentral, enroll
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.errors import CentralRejected
from kiosk_client.core.models import SessionDescription
from kiosk_client.core.session import EndReason, Phase

from .conftest import Site
from .kiosk_rig import Recorder, make_engine, wait_for

OFFER = SessionDescription("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "offer")


def clerk_client(site: Site) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=site.url, headers={"Authorization": f"Bearer {site.clerk.token}"})


async def listed(clerk: httpx.AsyncClient, appointment_id: str) -> dict[str, object]:
    response = await clerk.get("/api/v1/clerk/appointments")
    assert response.status_code == 200
    [item] = [a for a in response.json()["appointments"] if a["id"] == appointment_id]
    return dict(item)


@pytest.mark.parametrize("who", ["clerk", "kiosk"])
async def test_a_hung_up_appointment_cannot_be_joined_again(site: Site, who: str) -> None:
    token = (await enroll(site.url, site.enrollment_code)).device_token
    kiosk = HttpCentral(site.url, token, CentralClock(SystemClock()))
    appointment_id = str(site.appointment_in(60)["id"])
    answer_path = f"/api/v1/appointments/{appointment_id}/answer"
    try:
        async with clerk_client(site) as clerk:
            ticket = await kiosk.post_offer(appointment_id, OFFER)
            assert (await listed(clerk, appointment_id))["finished"] is False
            answer = {"type": "answer", "sdp": "v=0 a", "call_id": ticket.call_id}
            assert (await clerk.put(answer_path, json=answer)).status_code == 200
            if who == "clerk":
                hangup = await clerk.post(
                    f"/api/v1/appointments/{appointment_id}/hangup", json={"call_id": ticket.call_id}
                )
                assert hangup.status_code == 200
            else:
                await kiosk.hang_up(appointment_id, ticket.call_id, "citizen_hung_up")

            assert (await listed(clerk, appointment_id))["finished"] is True
            # The kiosk (restarted, say) cannot open it again…
            with pytest.raises(CentralRejected) as refused:
                await kiosk.post_offer(appointment_id, OFFER)
            assert refused.value.status == 409 and refused.value.code == "appointment_finished"
            # …so the call state still says ended, and no answer is taken, whatever call it names.
            state = (await clerk.get(f"/api/v1/appointments/{appointment_id}/call")).json()
            assert state["ended"] is True and state["call_id"] == ticket.call_id
            for call_id in (ticket.call_id, "call_other"):
                again = await clerk.put(answer_path, json={**answer, "call_id": call_id})
                assert again.status_code == 409
                error = again.json()["error"]
                assert error["code"] in ("call_ended", "appointment_finished")
                assert "ended" in error["message"] or "finished" in error["message"]
            assert (await listed(clerk, appointment_id))["finished"] is True
    finally:
        await kiosk.aclose()


async def test_a_kiosk_restarted_after_the_hang_up_does_not_call_again(site: Site, tmp_path: Path) -> None:
    token = (await enroll(site.url, site.enrollment_code)).device_token
    kiosk = HttpCentral(site.url, token, CentralClock(SystemClock()))
    appointment_id = str(site.appointment_in(1)["id"])
    ticket = await kiosk.post_offer(appointment_id, OFFER)
    await kiosk.hang_up(appointment_id, ticket.call_id, "citizen_hung_up")
    await kiosk.aclose()

    recorder = Recorder()
    engine = make_engine(site.url, token, tmp_path, recorder)  # a fresh process: it remembers nothing
    task = asyncio.get_running_loop().create_task(engine.run())
    try:
        await wait_for(lambda: recorder.records(), 20)
        [record] = recorder.records()
        assert record.appointment_id == appointment_id
        assert record.end_reason is EndReason.APPOINTMENT_OVER and record.answer_received_at is None
        await wait_for(lambda: engine.session.phase is Phase.IDLE, 10)
        async with clerk_client(site) as clerk:
            state = (await clerk.get(f"/api/v1/appointments/{appointment_id}/call")).json()
        assert state["ended"] is True and state["call_id"] == ticket.call_id  # no new call was opened
    finally:
        task.cancel()


async def test_the_clerk_sees_who_the_appointment_is_for(site: Site) -> None:
    start = datetime.now(UTC) + timedelta(minutes=5)
    named = site.admin.create_appointment(
        site.kiosk_id, site.clerk, "CAF", start, citizen_name="M. Bernard Dupont"
    )
    unnamed = site.admin.create_appointment(site.kiosk_id, site.clerk, "CPAM", start + timedelta(hours=1))
    assert "citizen_name" not in named  # the kiosk's view of an appointment never carries it
    async with clerk_client(site) as clerk:
        first, second = await listed(clerk, named["id"]), await listed(clerk, unnamed["id"])
    assert first["citizen_name"] == "M. Bernard Dupont" and first["site_name"] == "France Services de Test"
    assert first["service"] == "CAF" and first["finished"] is False
    assert second["citizen_name"] is None
    token = (await enroll(site.url, site.enrollment_code)).device_token
    kiosk = HttpCentral(site.url, token, CentralClock(SystemClock()))
    try:
        schedule = await kiosk.fetch_schedule(None)
    finally:
        await kiosk.aclose()
    assert schedule is not None and "Dupont" not in repr(schedule)
    admin = httpx.AsyncClient(base_url=site.url, headers={"Authorization": f"Bearer {site.admin_token}"})
    async with admin:
        too_long = await admin.post(
            "/api/v1/admin/appointments",
            json={
                "kiosk_id": site.kiosk_id,
                "clerk_id": site.clerk.clerk_id,
                "service": "CAF",
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=20)).isoformat(),
                "citizen_name": "x" * 201,
            },
        )
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "invalid_field"
