"""Walk-in sessions with a service on the reference central: clerks say they are available for
walk-ins from their console, which keeps it alive; a kiosk lists the services with a clerk available
(how many, never who) and asks for one: the available clerk who waited longest gets an appointment
with that kiosk starting now, as a walk-in code would give. Nobody available, an unknown service, a
malformed body change nothing; two kiosks racing for the last clerk: one gets them. Over loopback
HTTP, against the real central."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiosk_client.central.admin import Clerk
from kiosk_client.central.guard import CentralOptions, is_clerk_api
from kiosk_client.core.wire import parse_appointment
from kiosk_client.tools.clerk_bot import ClerkBot

from .conftest import Site
from .test_walk_in_central import (
    V1,
    Kiosk,
    central_with,
    clerk_appointments,
    clerk_client,
    enrolled,
    error_code,
    new_code,
)


@pytest.fixture
def kiosk(site: Site) -> Iterator[Kiosk]:
    with enrolled(site.url, site.admin, "Borne 2", "France Services de Test") as enrolled_kiosk:
        yield enrolled_kiosk


SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def set_available(url: str, clerk: Clerk, available: bool = True) -> httpx.Response:
    with clerk_client(url, clerk) as client:
        return client.put(f"{V1}/clerk/walk-in-availability", json={"available": available})


def availability(url: str, clerk: Clerk) -> dict[str, Any]:
    with clerk_client(url, clerk) as client:
        response = client.get(f"{V1}/clerk/walk-in-availability")
    response.raise_for_status()
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.json())


def keep_alive(url: str, clerk: Clerk) -> dict[str, Any]:
    with clerk_client(url, clerk) as client:
        response = client.post(f"{V1}/clerk/walk-in-availability/keep-alive", json={})
    response.raise_for_status()
    return dict(response.json())


def services(kiosk: Kiosk) -> list[dict[str, Any]]:
    response = kiosk.client.get(f"{V1}/kiosk/walk-in-services")
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["refresh_seconds"] > 0
    return list(response.json()["services"])


def walk_in_with(kiosk: Kiosk, service: Any) -> httpx.Response:
    return kiosk.client.post(f"{V1}/kiosk/walk-ins", json={"service": service})


def nothing_created(site: Site, kiosk: Kiosk, etag: str, *clerks: Clerk) -> None:
    assert kiosk.client.get(f"{V1}/kiosk/schedule", headers={"If-None-Match": etag}).status_code == 304
    for clerk in (site.clerk, *clerks):
        assert clerk_appointments(site.url, clerk) == []


# --------------------------------------------------------------------------- a clerk available


def test_an_available_clerk_is_listed_by_service_and_a_kiosk_gets_a_session_with_them(
    site: Site, kiosk: Kiosk
) -> None:
    assert services(kiosk) == []
    assert availability(site.url, site.clerk)["available"] is False
    turned_on = set_available(site.url, site.clerk)
    assert turned_on.status_code == 200, turned_on.text
    state = turned_on.json()
    assert state["available"] is True and state["service"] == "CAF" and state["ended"] is None
    assert 55 <= state["expires_in_seconds"] <= 60 and state["keep_alive_seconds"] == 20

    listed = kiosk.client.get(f"{V1}/kiosk/walk-in-services")
    assert listed.json()["services"] == [{"service": "CAF", "clerks_available": 1}]
    assert "Martin" not in listed.text and site.clerk.clerk_id not in listed.text  # how many, never who

    etag = kiosk.schedule().headers["ETag"]
    answer = walk_in_with(kiosk, "CAF")
    assert answer.status_code == 201, answer.text
    appointment = answer.json()["appointment"]
    parsed = parse_appointment(appointment, "$.appointment")
    assert parsed.service == "CAF" and parsed.clerk_name == "Mme Martin"
    assert abs((parsed.start - datetime.now(UTC)).total_seconds()) < 5
    assert parsed.end - parsed.start == timedelta(minutes=30)
    assert parsed.allowed_origins == () and parsed.start_url is None
    # In the kiosk's schedule exactly as answered, and in the clerk's agenda as a walk-in, as a code gives.
    after = kiosk.schedule()
    assert after.headers["ETag"] != etag
    assert [a for a in after.json()["appointments"] if a["id"] == appointment["id"]] == [appointment]
    [mine] = clerk_appointments(site.url, site.clerk)
    assert mine["id"] == appointment["id"] and mine["walk_in"] is True and mine["kiosk_name"] == "Borne 2"

    # The clerk is taken: no longer available, and the console is told why and by which session.
    state = availability(site.url, site.clerk)
    assert state["available"] is False and state["ended"] == "walk_in"
    assert state["appointment_id"] == appointment["id"]
    assert keep_alive(site.url, site.clerk)["available"] is False  # a keep-alive does not turn it back on
    assert services(kiosk) == []
    assert error_code(walk_in_with(kiosk, "CAF"), 409) == "no_clerk_available"
    # Until the clerk turns it on again.
    assert set_available(site.url, site.clerk).json()["available"] is True
    assert services(kiosk) == [{"service": "CAF", "clerks_available": 1}]


def test_the_clerk_who_waited_longest_is_taken_first(site: Site, kiosk: Kiosk) -> None:
    durand = site.admin.create_clerk("M. Durand", "CAF")
    other = site.admin.create_clerk("Mme Petit", "France Travail")
    for clerk in (durand, site.clerk, other):
        assert set_available(site.url, clerk).status_code == 200
        time.sleep(0.01)
    assert set_available(site.url, durand).status_code == 200  # again: keeps its place in the queue
    assert services(kiosk) == [
        {"service": "CAF", "clerks_available": 2},
        {"service": "France Travail", "clerks_available": 1},
    ]
    first = walk_in_with(kiosk, "CAF").json()["appointment"]
    second = walk_in_with(kiosk, "CAF").json()["appointment"]
    assert (first["clerk_name"], second["clerk_name"]) == ("M. Durand", "Mme Martin")
    assert error_code(walk_in_with(kiosk, "CAF"), 409) == "no_clerk_available"
    assert services(kiosk) == [{"service": "France Travail", "clerks_available": 1}]
    assert walk_in_with(kiosk, "France Travail").json()["appointment"]["clerk_name"] == "Mme Petit"


def test_a_clerk_who_turns_it_off_is_no_longer_listed(site: Site, kiosk: Kiosk) -> None:
    set_available(site.url, site.clerk)
    off = set_available(site.url, site.clerk, False)
    assert off.status_code == 200 and off.json()["available"] is False and off.json()["ended"] == "turned_off"
    assert services(kiosk) == []
    assert error_code(walk_in_with(kiosk, "CAF"), 409) == "no_clerk_available"


def test_availability_expires_without_the_consoles_keep_alive(tmp_path: Path) -> None:
    options = CentralOptions(walk_in_availability_lasts=timedelta(seconds=1.5))
    with central_with(tmp_path, options) as (central, admin):
        clerk = admin.create_clerk("Mme Martin", "CAF")
        with enrolled(central.url, admin, "Borne 1", "Mairie") as kiosk:
            assert set_available(central.url, clerk).json()["keep_alive_seconds"] == 1
            # Kept alive, it lasts beyond its 1.5 s.
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                state = keep_alive(central.url, clerk)
                assert state["available"] is True, state
                time.sleep(0.4)
            assert services(kiosk) == [{"service": "CAF", "clerks_available": 1}]
            # Left alone (the console closed), it ends, and only the clerk turns it on again.
            time.sleep(1.7)
            assert services(kiosk) == []
            etag = kiosk.schedule().headers["ETag"]
            assert error_code(walk_in_with(kiosk, "CAF"), 409) == "no_clerk_available"
            assert (
                kiosk.client.get(f"{V1}/kiosk/schedule", headers={"If-None-Match": etag}).status_code == 304
            )
            state = keep_alive(central.url, clerk)
            assert state["available"] is False and state["ended"] == "expired"
            assert availability(central.url, clerk)["ended"] == "expired"
            assert set_available(central.url, clerk).json()["available"] is True
            assert services(kiosk) == [{"service": "CAF", "clerks_available": 1}]


def test_a_clerk_in_a_call_is_not_available(site: Site, kiosk: Kiosk) -> None:
    """Answering any call ends the availability; it cannot be turned on during the call, only after."""
    set_available(site.url, site.clerk)
    booked = site.admin.create_appointment(
        kiosk.kiosk_id, site.clerk, "CAF", datetime.now(UTC), timedelta(minutes=20)
    )
    offer = kiosk.client.put(f"{V1}/appointments/{booked['id']}/offer", json={"type": "offer", "sdp": SDP})
    assert offer.status_code == 201, offer.text
    call_id = offer.json()["call_id"]
    assert services(kiosk) == [{"service": "CAF", "clerks_available": 1}]  # an offer waiting is no call yet
    with clerk_client(site.url, site.clerk) as clerk:
        answered = clerk.put(
            f"{V1}/appointments/{booked['id']}/answer",
            json={"type": "answer", "sdp": SDP, "call_id": call_id},
        )
        assert answered.status_code == 200, answered.text
    assert services(kiosk) == []
    assert availability(site.url, site.clerk)["ended"] == "in_call"
    assert error_code(set_available(site.url, site.clerk), 409) == "clerk_in_call"
    assert error_code(walk_in_with(kiosk, "CAF"), 409) == "no_clerk_available"
    hung_up = kiosk.client.post(f"{V1}/appointments/{booked['id']}/hangup", json={"call_id": call_id})
    assert hung_up.status_code == 200
    assert set_available(site.url, site.clerk).json()["available"] is True
    assert services(kiosk) == [{"service": "CAF", "clerks_available": 1}]


# --------------------------------------------------------------------------- refusals


def test_nobody_available_is_a_409_and_creates_nothing_nor_counts_as_a_wrong_try(
    site: Site, kiosk: Kiosk
) -> None:
    etag = kiosk.schedule().headers["ETag"]
    for _ in range(7):  # more than the wrong tries allowed
        refused = walk_in_with(kiosk, "CAF")
        assert error_code(refused, 409) == "no_clerk_available" and refused.json()["error"]["message"]
    nothing_created(site, kiosk, etag)
    set_available(site.url, site.clerk)
    assert walk_in_with(kiosk, "CAF").status_code == 201


def test_an_unknown_service_is_a_404_and_counts_as_a_wrong_try(site: Site, kiosk: Kiosk) -> None:
    set_available(site.url, site.clerk)
    etag = kiosk.schedule().headers["ETag"]
    assert error_code(walk_in_with(kiosk, "caf"), 404) == "walk_in_service_unknown"  # names are exact
    for _ in range(4):
        assert error_code(walk_in_with(kiosk, "Impôts"), 404) == "walk_in_service_unknown"
    # The kiosk's limit is the code path's: both ways wait now, and nothing was used up.
    refused = walk_in_with(kiosk, "CAF")
    assert error_code(refused, 429) == "too_many_attempts"
    assert 590 <= int(refused.headers["Retry-After"]) <= 600
    assert error_code(kiosk.walk_in(new_code(site.url, site.clerk)["code"]), 429) == "too_many_attempts"
    nothing_created(site, kiosk, etag)
    assert availability(site.url, site.clerk)["available"] is True
    with enrolled(site.url, site.admin, "Borne 3", "Ailleurs") as other:
        assert walk_in_with(other, "CAF").status_code == 201


def test_wrong_codes_hold_back_the_service_path_too(site: Site, kiosk: Kiosk) -> None:
    set_available(site.url, site.clerk)
    for _ in range(5):
        assert kiosk.walk_in("000000").status_code == 404
    assert error_code(walk_in_with(kiosk, "CAF"), 429) == "too_many_attempts"
    assert availability(site.url, site.clerk)["available"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"service": ""},
        {"service": "   "},
        {"service": None},
        {"service": 42},
        {"service": ["CAF"]},
        {"service": "C" * 201},
        {"service": "CAF\n"},
        {"service": "CAF", "code": "123456"},  # one or the other
        {},
    ],
)
def test_malformed_bodies_are_refused_and_change_nothing(
    site: Site, kiosk: Kiosk, body: dict[str, Any]
) -> None:
    set_available(site.url, site.clerk)
    etag = kiosk.schedule().headers["ETag"]
    for _ in range(6):  # not wrong tries either
        assert error_code(kiosk.client.post(f"{V1}/kiosk/walk-ins", json=body), 400) == "invalid_field"
    nothing_created(site, kiosk, etag)
    assert walk_in_with(kiosk, "CAF").status_code == 201


def test_bad_json_is_refused_everywhere(site: Site, kiosk: Kiosk) -> None:
    for raw in (b"", b"{", b"[]", b'"CAF"', b'{"service": "CAF"'):
        response = kiosk.client.post(
            f"{V1}/kiosk/walk-ins", content=raw, headers={"Content-Type": "application/json"}
        )
        assert error_code(response, 400) == "invalid_json"
    with clerk_client(site.url, site.clerk) as clerk:
        for path, method in (
            ("/clerk/walk-in-availability", "PUT"),
            ("/clerk/walk-in-availability/keep-alive", "POST"),
        ):
            for raw in (b"", b"[]", b"{"):
                response = clerk.request(
                    method, f"{V1}{path}", content=raw, headers={"Content-Type": "application/json"}
                )
                assert error_code(response, 400) == "invalid_json", path
        for value in ("true", 1, None, "on"):
            response = clerk.put(f"{V1}/clerk/walk-in-availability", json={"available": value})
            assert error_code(response, 400) == "invalid_field"
    assert availability(site.url, site.clerk)["available"] is False
    assert services(kiosk) == []


async def test_two_kiosks_racing_for_the_last_clerk_one_gets_them(site: Site, kiosk: Kiosk) -> None:
    await asyncio.to_thread(set_available, site.url, site.clerk)
    with enrolled(site.url, site.admin, "Borne 3", "Ailleurs") as third:
        clients = [
            httpx.AsyncClient(base_url=site.url, headers={"Authorization": k.client.headers["Authorization"]})
            for k in (kiosk, third) * 4
        ]
        try:
            answers = await asyncio.gather(
                *(c.post(f"{V1}/kiosk/walk-ins", json={"service": "CAF"}) for c in clients)
            )
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"no_clerk_available"}
    assert len(clerk_appointments(site.url, site.clerk)) == 1


def test_who_may_do_what(site: Site, kiosk: Kiosk) -> None:
    with httpx.Client(base_url=site.url) as anonymous:
        assert anonymous.get(f"{V1}/kiosk/walk-in-services").status_code == 401
        assert anonymous.get(f"{V1}/clerk/walk-in-availability").status_code == 401
        assert anonymous.put(f"{V1}/clerk/walk-in-availability", json={"available": True}).status_code == 401
        assert anonymous.post(f"{V1}/kiosk/walk-ins", json={"service": "CAF"}).status_code == 401
    # A kiosk cannot make a clerk available, nor a clerk list or take walk-ins.
    assert kiosk.client.put(f"{V1}/clerk/walk-in-availability", json={"available": True}).status_code == 401
    set_available(site.url, site.clerk)
    with clerk_client(site.url, site.clerk) as clerk:
        assert clerk.get(f"{V1}/kiosk/walk-in-services").status_code == 401
        assert clerk.post(f"{V1}/kiosk/walk-ins", json={"service": "CAF"}).status_code == 401
    assert availability(site.url, site.clerk)["available"] is True
    # The clerk side is callable from a clerk app on an allowed origin (CORS); the kiosk side is not.
    assert is_clerk_api(f"{V1}/clerk/walk-in-availability")
    assert is_clerk_api(f"{V1}/clerk/walk-in-availability/keep-alive")
    assert not is_clerk_api(f"{V1}/kiosk/walk-in-services")


async def test_the_clerk_bot_makes_itself_available(site: Site, kiosk: Kiosk) -> None:
    bot = ClerkBot(site.url, site.clerk.token)
    try:
        state = await bot.set_walk_in_availability()
        assert state["available"] is True and state["service"] == "CAF"
        assert (await bot.keep_walk_in_availability())["available"] is True
        assert await asyncio.to_thread(services, kiosk) == [{"service": "CAF", "clerks_available": 1}]
        answer = await asyncio.to_thread(walk_in_with, kiosk, "CAF")
        [listed] = await bot.appointments()
        assert listed["id"] == answer.json()["appointment"]["id"] and listed["walk_in"] is True
        assert (await bot.keep_walk_in_availability())["ended"] == "walk_in"
        assert (await bot.set_walk_in_availability(False))["available"] is False
    finally:
        await bot.aclose()
