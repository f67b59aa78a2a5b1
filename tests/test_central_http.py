"""The kiosk's Central API adapter, against the reference central and a hostile one, over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from kiosk_client.adapters.central_http import HttpCentral, enroll
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.errors import (
    AuthenticationFailed,
    CentralRejected,
    CentralUnavailable,
    MalformedResponse,
)
from kiosk_client.core.models import Heartbeat, SessionDescription

from .conftest import Site
from .hostile_central import HostileCentral, Reply

OFFER = SessionDescription("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "offer")


@pytest.fixture
async def kiosk(site: Site) -> AsyncIterator[HttpCentral]:
    token = (await enroll(site.url, site.enrollment_code)).device_token
    central = HttpCentral(site.url, token, CentralClock(SystemClock()))
    yield central
    await central.aclose()


@pytest.fixture
async def hostile() -> AsyncIterator[HostileCentral]:
    server = HostileCentral()
    await server.start()
    yield server
    await server.stop()


async def test_enrolment_code_is_one_time(site: Site) -> None:
    enrollment = await enroll(site.url, site.enrollment_code)
    assert enrollment.kiosk_id == site.kiosk_id and len(enrollment.device_token) > 30
    with pytest.raises(AuthenticationFailed, match="invalid_code"):
        await enroll(site.url, site.enrollment_code)


async def test_schedule_with_etag_and_304(site: Site, kiosk: HttpCentral) -> None:
    appointment = site.appointment_in(600)
    schedule = await kiosk.fetch_schedule(None)
    assert schedule is not None and schedule.etag
    assert [a.id for a in schedule.appointments] == [appointment["id"]]
    assert schedule.appointments[0].clerk_name == "Mme Martin"
    assert await kiosk.fetch_schedule(schedule.etag) is None  # 304: unchanged
    site.appointment_in(1200)
    changed = await kiosk.fetch_schedule(schedule.etag)
    assert changed is not None and len(changed.appointments) == 2 and changed.etag != schedule.etag


async def test_config_and_heartbeat(site: Site, kiosk: HttpCentral) -> None:
    config = await kiosk.fetch_config()
    assert config.join_before_s == 2 and config.poll_interval_s == 1
    await kiosk.send_heartbeat(Heartbeat("idle", None, {"camera": "missing"}, "0.1.0"))
    [status] = site.admin.kiosks()
    assert status["state"] == "idle" and status["devices"] == {"camera": "missing"} and status["last_seen"]


async def test_signalling_offer_answer_hang_up_with_long_poll(site: Site, kiosk: HttpCentral) -> None:
    import httpx

    appointment_id = str(site.appointment_in(60)["id"])
    ticket = await kiosk.post_offer(appointment_id, OFFER)
    assert await kiosk.wait_call(appointment_id, ticket.version, 0.2) is None  # nothing new: 204
    async with httpx.AsyncClient(
        base_url=site.url, headers={"Authorization": f"Bearer {site.clerk.token}"}
    ) as clerk:
        state = (await clerk.get(f"/api/v1/appointments/{appointment_id}/call")).json()
        assert state["offer"]["sdp"] == OFFER.sdp and state["call_id"] == ticket.call_id
        stale = await clerk.put(
            f"/api/v1/appointments/{appointment_id}/answer",
            json={"type": "answer", "sdp": "v=0 a", "call_id": "nope"},
        )
        assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_call"
        answered = await clerk.put(
            f"/api/v1/appointments/{appointment_id}/answer",
            json={"type": "answer", "sdp": "v=0 a", "call_id": ticket.call_id},
        )
        assert answered.status_code == 200
    signal = await kiosk.wait_call(appointment_id, ticket.version, 5)
    assert signal is not None and signal.answer is not None and signal.answer.sdp == "v=0 a"
    await kiosk.hang_up(appointment_id, ticket.call_id, "citizen_hung_up")
    ended = await kiosk.wait_call(appointment_id, signal.version, 5)
    assert (
        ended is not None and ended.ended and ended.ended_by == "kiosk" and ended.reason == "citizen_hung_up"
    )


async def test_another_kiosks_appointment_is_not_found(site: Site, kiosk: HttpCentral) -> None:
    other = site.admin.create_kiosk("Borne 2", "Ailleurs")
    start = datetime.now(UTC) + timedelta(minutes=5)
    foreign = site.admin.create_appointment(other, site.clerk, "CAF", start)
    with pytest.raises(CentralRejected, match="404 not_found"):
        await kiosk.post_offer(str(foreign["id"]), OFFER)


async def test_wrong_device_token(site: Site) -> None:
    central = HttpCentral(site.url, "not-a-token")
    with pytest.raises(AuthenticationFailed, match="401 unauthorized"):
        await central.fetch_schedule(None)
    await central.aclose()


async def test_unreachable_central() -> None:
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    central = HttpCentral(f"http://127.0.0.1:{port}", "t", timeout_s=2)
    with pytest.raises(CentralUnavailable, match="cannot reach the central"):
        await central.fetch_schedule(None)
    await central.aclose()


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (Reply(body=b"<html>proxy error</html>", content_type="text/html"), MalformedResponse, "not JSON"),
        (Reply(body=b"[" * 100_000 + b"]" * 100_000), MalformedResponse, "nested deeper"),
        (
            Reply(
                body=b'{"kiosk": {"name": "a", "site_name": "b"}, "appointments": [], "n": 1'
                + b"0" * 5000
                + b"}"
            ),
            MalformedResponse,
            "number longer",
        ),
        (
            Reply(status=404, body=b'{"error": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
            CentralRejected,
            "404",
        ),
        (
            Reply(body=b'{"kiosk": "x", "appointments": []}'),
            MalformedResponse,
            r"\$.kiosk: expected an object",
        ),
        (
            Reply(body=b'{"kiosk": {"name": "a", "site_name": "b"}, "appointments": {}}'),
            MalformedResponse,
            "expected an array",
        ),
        (Reply(status=500, body=b"oops"), CentralUnavailable, "failed \\(500\\)"),
        (Reply(status=503, body=b""), CentralUnavailable, "failed \\(503\\)"),
        (
            Reply(status=404, body=b'{"error": {"code": "gone", "message": "no"}}'),
            CentralRejected,
            "404 gone",
        ),
        (Reply(status=403, body=b"forbidden"), AuthenticationFailed, "403"),
        (Reply(delay_s=3.0), CentralUnavailable, "did not answer in time"),
        (
            Reply(body=b'{"kiosk": {"name": "a", "site_name": "b"}, "appointments": []}' + b" " * 3_000_000),
            MalformedResponse,
            "larger than",
        ),
    ],
)
async def test_hostile_answers_become_clear_errors(
    hostile: HostileCentral, reply: Reply, error: type[Exception], message: str
) -> None:
    hostile.reply = reply
    central = HttpCentral(hostile.url, "t", timeout_s=1)
    with pytest.raises(error, match=message):
        await central.fetch_schedule(None)
    await central.aclose()


async def test_clock_offset_from_the_date_header(hostile: HostileCentral) -> None:
    from email.utils import format_datetime

    ahead = datetime.now(UTC) + timedelta(minutes=7)
    hostile.reply = Reply(
        body=json.dumps({"kiosk": {"name": "a", "site_name": "b"}, "appointments": []}).encode(),
        headers={"Date": format_datetime(ahead, usegmt=True)},
    )
    clock = CentralClock(SystemClock())
    central = HttpCentral(hostile.url, "t", clock)
    await central.fetch_schedule(None)
    await central.aclose()
    assert timedelta(minutes=6, seconds=58) < clock.offset < timedelta(minutes=7, seconds=2)


class GoesSilent:
    """A loopback HTTP server whose open connections all go silent at once, as when the kiosk's link
    is cut: the central is fine, but every pooled connection is dead. New connections are served."""

    def __init__(self) -> None:
        self.silent_before = 0  # connections numbered below this never answer again
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if number < self.silent_before:
                    await asyncio.sleep(3600)
                body = b'{"kiosk": {"name": "Borne 1", "site_name": "Site"}, "appointments": []}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_after_a_cut_the_next_request_opens_a_fresh_connection() -> None:
    silent = GoesSilent()
    async with silent as url:
        central = HttpCentral(url, "t", timeout_s=1.0)
        try:
            # Several requests at once leave several connections in the pool.
            await asyncio.gather(*(central.fetch_schedule(None) for _ in range(4)))
            assert silent.connections == 4
            silent.silent_before = silent.connections  # the cut: every pooled connection is now dead
            with pytest.raises(CentralUnavailable, match="did not answer in time"):
                await central.fetch_schedule(None)
            # The link is back: the next request must not wait out a timeout on another dead one.
            started = asyncio.get_running_loop().time()
            schedule = await central.fetch_schedule(None)
            assert schedule is not None and schedule.kiosk_name == "Borne 1"
            assert asyncio.get_running_loop().time() - started < 0.5
            assert silent.connections == 5
        finally:
            await central.aclose()


async def test_walk_ins_with_a_service_through_the_adapter(site: Site, kiosk: HttpCentral) -> None:
    from kiosk_client.core.models import WalkInService
    from kiosk_client.tools.clerk_bot import ClerkBot

    assert await kiosk.walk_in_services() == ()
    with pytest.raises(CentralRejected) as refused:
        await kiosk.start_walk_in_with_service("CAF")
    assert refused.value.status == 409 and refused.value.code == "no_clerk_available"
    with pytest.raises(CentralRejected) as unknown:
        await kiosk.start_walk_in_with_service("Impôts")
    assert unknown.value.code == "walk_in_service_unknown"
    bot = ClerkBot(site.url, site.clerk.token)
    try:
        await bot.set_walk_in_availability()
        assert await kiosk.walk_in_services() == (WalkInService("CAF", 1),)
        appointment = await kiosk.start_walk_in_with_service("CAF")
        assert appointment.clerk_name == "Mme Martin" and appointment.service == "CAF"
        schedule = await kiosk.fetch_schedule(None)
        assert schedule is not None and schedule.find(appointment.id) == appointment
        assert await kiosk.walk_in_services() == ()
    finally:
        await bot.aclose()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"services": {}}', "expected an array"),
        (b'{"services": [{"service": "CAF"}]}', r"\$.services\[0\].clerks_available: missing"),
        (b'{"services": [{"service": "CAF", "clerks_available": 0}]}', "at least 1"),
        (b'{"services": [{"service": "  ", "clerks_available": 1}]}', "empty"),
        (b'{"services": [{"service": 7, "clerks_available": 1}]}', "expected a string"),
        (b"[]", "expected an object"),
    ],
)
async def test_a_malformed_walk_in_services_list_is_a_clear_error(
    hostile: HostileCentral, body: bytes, message: str
) -> None:
    hostile.reply = Reply(body=body)
    central = HttpCentral(hostile.url, "t", timeout_s=1)
    try:
        with pytest.raises(MalformedResponse, match=message):
            await central.walk_in_services()
    finally:
        await central.aclose()
