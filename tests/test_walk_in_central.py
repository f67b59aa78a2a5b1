"""Walk-in sessions on the reference central: a clerk's code, used once by whichever kiosk the citizen
sits at, becomes an appointment of that kiosk with that clerk starting now; wrong, expired and used
codes change nothing, and a kiosk cannot guess codes. The staff PIN is kept and served as a hash only.
Over loopback HTTP, against the real central."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiosk_client.central.admin import CentralAdmin, Clerk
from kiosk_client.central.guard import CentralOptions, FailureWindow, is_clerk_api
from kiosk_client.central.server import CentralThread
from kiosk_client.core.staff_pin import pin_matches
from kiosk_client.core.wire import parse_appointment, parse_schedule
from kiosk_client.tools.clerk_bot import ClerkBot

from .conftest import Site
from .kiosk_rig import enrolled_token

V1 = "/api/v1"


@dataclass
class Kiosk:
    """An enrolled kiosk, speaking the kiosk side of the API with its device token."""

    kiosk_id: str
    client: httpx.Client

    def walk_in(self, code: Any) -> httpx.Response:
        return self.client.post(f"{V1}/kiosk/walk-ins", json={"code": code})

    def schedule(self) -> httpx.Response:
        return self.client.get(f"{V1}/kiosk/schedule")

    def config(self) -> dict[str, Any]:
        response = self.client.get(f"{V1}/kiosk/config")
        response.raise_for_status()
        return dict(response.json())


@contextlib.contextmanager
def enrolled(url: str, admin: CentralAdmin, name: str, site_name: str) -> Iterator[Kiosk]:
    kiosk_id = admin.create_kiosk(name, site_name)
    token = enrolled_token(url, admin.enrollment_code(kiosk_id))
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield Kiosk(kiosk_id, client)


def clerk_client(url: str, clerk: Clerk) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {clerk.token}"})


def new_code(url: str, clerk: Clerk) -> dict[str, Any]:
    with clerk_client(url, clerk) as client:
        response = client.post(f"{V1}/clerk/walk-in-codes", json={})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.json())


def clerk_appointments(url: str, clerk: Clerk) -> list[dict[str, Any]]:
    with clerk_client(url, clerk) as client:
        response = client.get(f"{V1}/clerk/appointments")
    response.raise_for_status()
    return list(response.json()["appointments"])


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    return str(response.json()["error"]["code"])


@pytest.fixture
def kiosk(site: Site) -> Iterator[Kiosk]:
    with enrolled(site.url, site.admin, "Borne 2", "France Services de Test") as enrolled_kiosk:
        yield enrolled_kiosk


@contextlib.contextmanager
def central_with(tmp_path: Path, options: CentralOptions) -> Iterator[tuple[CentralThread, CentralAdmin]]:
    with CentralThread(tmp_path / "c.db", options=options) as central:
        admin = CentralAdmin(central.url, central.admin_token)
        yield central, admin
        admin.close()


# --------------------------------------------------------------------------- a code that works


def test_a_clerks_code_opens_a_walk_in_session_on_the_kiosk_that_uses_it(site: Site, kiosk: Kiosk) -> None:
    before = kiosk.schedule()
    etag = before.headers["ETag"]
    made = new_code(site.url, site.clerk)
    assert made["code"].isdigit() and len(made["code"]) == 6 and made["service"] == "CAF"
    expires = datetime.fromisoformat(made["expires_at"])
    assert expires.utcoffset() == timedelta(0)
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)
    assert 540 < made["expires_in_seconds"] <= 600

    code = made["code"]
    used = kiosk.walk_in(f" {code[:3]} {code[3:]} ")  # as the staff may type it
    assert used.status_code == 201, used.text
    appointment = used.json()["appointment"]
    now = datetime.now(UTC)

    # Exactly what the schedule lists for it, which the kiosk reads as for any appointment.
    after = kiosk.schedule()
    assert after.headers["ETag"] != etag
    assert kiosk.client.get(f"{V1}/kiosk/schedule", headers={"If-None-Match": etag}).status_code == 200
    [listed] = [a for a in after.json()["appointments"] if a["id"] == appointment["id"]]
    assert listed == appointment
    assert set(appointment) == {
        "id", "service", "clerk_name", "start", "end", "allowed_origins", "start_url"
    }  # fmt: skip
    parsed = parse_appointment(appointment, "$")
    assert [a.id for a in parse_schedule(after.json(), None).appointments] == [parsed.id]
    assert parsed.service == "CAF" and parsed.clerk_name == "Mme Martin"
    assert abs((parsed.start - now).total_seconds()) < 5
    assert parsed.end - parsed.start == timedelta(minutes=30)
    assert parsed.allowed_origins == () and parsed.start_url is None

    # In the clerk's agenda, marked as a walk-in, with the kiosk that called.
    [mine] = clerk_appointments(site.url, site.clerk)
    assert mine["id"] == appointment["id"] and mine["walk_in"] is True
    assert mine["kiosk_name"] == "Borne 2" and mine["site_name"] == "France Services de Test"
    assert mine["citizen_name"] is None and mine["finished"] is False

    # Once only.
    assert error_code(kiosk.walk_in(code), 410) == "walk_in_code_used"
    assert len(kiosk.schedule().json()["appointments"]) == 1


def test_a_booked_appointment_is_not_a_walk_in(site: Site) -> None:
    site.appointment_in(600)
    [booked] = clerk_appointments(site.url, site.clerk)
    assert booked["walk_in"] is False


def test_any_enrolled_kiosk_may_use_a_code_and_gets_its_own_appointment(site: Site, kiosk: Kiosk) -> None:
    """A code is for whichever kiosk the citizen sits at, wherever it is; the others never see it."""
    with enrolled(site.url, site.admin, "Borne du bourg", "Mairie de Saint-Ailleurs") as elsewhere:
        code = new_code(site.url, site.clerk)["code"]
        appointment = elsewhere.walk_in(code).json()["appointment"]
        assert [a["id"] for a in elsewhere.schedule().json()["appointments"]] == [appointment["id"]]
        assert kiosk.schedule().json()["appointments"] == []
        assert error_code(kiosk.walk_in(code), 410) == "walk_in_code_used"
    [mine] = clerk_appointments(site.url, site.clerk)
    assert mine["site_name"] == "Mairie de Saint-Ailleurs"


def test_the_session_is_with_the_clerk_who_made_the_code(site: Site, kiosk: Kiosk) -> None:
    other = site.admin.create_clerk("M. Durand", "France Travail")
    made = new_code(site.url, other)
    assert made["service"] == "France Travail"
    appointment = kiosk.walk_in(made["code"]).json()["appointment"]
    assert appointment["clerk_name"] == "M. Durand" and appointment["service"] == "France Travail"
    assert [a["id"] for a in clerk_appointments(site.url, other)] == [appointment["id"]]
    assert clerk_appointments(site.url, site.clerk) == []


async def test_two_kiosks_racing_for_one_code_open_one_session(site: Site, kiosk: Kiosk) -> None:
    with enrolled(site.url, site.admin, "Borne 3", "Ailleurs") as third:
        code = new_code(site.url, site.clerk)["code"]
        clients = [
            httpx.AsyncClient(base_url=site.url, headers={"Authorization": k.client.headers["Authorization"]})
            for k in (kiosk, third) * 4
        ]
        try:
            answers = await asyncio.gather(
                *(c.post(f"{V1}/kiosk/walk-ins", json={"code": code}) for c in clients)
            )
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
    assert sorted(a.status_code for a in answers) == [201] + [410] * 7
    assert len(clerk_appointments(site.url, site.clerk)) == 1


async def test_the_clerk_bot_makes_a_code_and_sees_the_session(site: Site, kiosk: Kiosk) -> None:
    bot = ClerkBot(site.url, site.clerk.token)
    try:
        code = await bot.create_walk_in_code()
        answer = await asyncio.to_thread(kiosk.walk_in, code)
        assert answer.status_code == 201
        [listed] = await bot.appointments()
        assert listed["id"] == answer.json()["appointment"]["id"] and listed["walk_in"] is True
    finally:
        await bot.aclose()


# --------------------------------------------------------------------------- codes that do not work


def assert_nothing_changed(site: Site, kiosk: Kiosk, etag: str) -> None:
    assert kiosk.client.get(f"{V1}/kiosk/schedule", headers={"If-None-Match": etag}).status_code == 304
    assert clerk_appointments(site.url, site.clerk) == []


def test_a_wrong_code_is_unknown_and_changes_nothing(site: Site, kiosk: Kiosk) -> None:
    code = new_code(site.url, site.clerk)["code"]
    etag = kiosk.schedule().headers["ETag"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = kiosk.walk_in(wrong)
    assert error_code(refused, 404) == "walk_in_code_unknown"
    assert refused.json()["error"]["message"]
    assert_nothing_changed(site, kiosk, etag)
    assert kiosk.walk_in(code).status_code == 201  # the right one still works


@pytest.mark.parametrize(
    "body",
    [
        {"code": 482913},  # a number: a code may start with 0
        {"code": "48291"},
        {"code": "4829134"},
        {"code": "48a913"},
        {"code": "482-913"},
        {"code": "٤٨٢٩١٣"},  # digits, but not the ASCII ones a code is made of
        {"code": ""},
        {"code": None},
        {"code": ["482913"]},
        {"code": "4" * 100_000},
        {},
    ],
)
def test_malformed_codes_are_refused_and_do_not_count_as_guesses(
    site: Site, kiosk: Kiosk, body: dict[str, Any]
) -> None:
    etag = kiosk.schedule().headers["ETag"]
    for _ in range(6):  # more than the wrong codes allowed: none of these is a guess
        response = kiosk.client.post(f"{V1}/kiosk/walk-ins", json=body)
        assert error_code(response, 400) == "invalid_field"
    assert_nothing_changed(site, kiosk, etag)
    assert kiosk.walk_in(new_code(site.url, site.clerk)["code"]).status_code == 201


def test_an_expired_code_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    options = CentralOptions(walk_in_code_lifetime=timedelta(seconds=1))
    with central_with(tmp_path, options) as (central, admin):
        clerk = admin.create_clerk("Mme Martin", "CAF")
        with enrolled(central.url, admin, "Borne 1", "Mairie") as kiosk:
            made = new_code(central.url, clerk)
            assert made["expires_in_seconds"] <= 1
            time.sleep(1.2)
            assert error_code(kiosk.walk_in(made["code"]), 410) == "walk_in_code_expired"
            assert kiosk.schedule().json()["appointments"] == []
            assert clerk_appointments(central.url, clerk) == []


def test_a_clerk_has_at_most_three_live_codes_and_a_fourth_withdraws_the_oldest(
    site: Site, kiosk: Kiosk
) -> None:
    codes = [new_code(site.url, site.clerk)["code"] for _ in range(4)]
    assert len(set(codes)) == 4
    assert error_code(kiosk.walk_in(codes[0]), 410) == "walk_in_code_expired"
    for code in codes[1:]:
        assert kiosk.walk_in(code).status_code == 201
    # Another clerk's codes are their own.
    other = site.admin.create_clerk("M. Durand", "CPAM")
    assert kiosk.walk_in(new_code(site.url, other)["code"]).status_code == 201


def test_wrong_codes_are_limited_per_kiosk(site: Site, kiosk: Kiosk) -> None:
    code = new_code(site.url, site.clerk)["code"]
    wrong = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 6)]
    etag = kiosk.schedule().headers["ETag"]
    for guess in wrong:
        assert error_code(kiosk.walk_in(guess), 404) == "walk_in_code_unknown"
    refused = kiosk.walk_in(code)  # even the right one waits now
    assert error_code(refused, 429) == "too_many_attempts"
    assert 590 <= int(refused.headers["Retry-After"]) <= 600
    assert error_code(kiosk.walk_in(wrong[0]), 429) == "too_many_attempts"
    assert_nothing_changed(site, kiosk, etag)
    # Another kiosk is not held back, and the code was not used up by the refused try.
    with enrolled(site.url, site.admin, "Borne 3", "Ailleurs") as other:
        assert other.walk_in(code).status_code == 201


def test_used_and_expired_codes_count_as_wrong_tries_too(site: Site, kiosk: Kiosk) -> None:
    code = new_code(site.url, site.clerk)["code"]
    assert kiosk.walk_in(code).status_code == 201
    for _ in range(5):
        assert error_code(kiosk.walk_in(code), 410) == "walk_in_code_used"
    assert error_code(kiosk.walk_in(code), 429) == "too_many_attempts"


def test_the_limit_lifts_once_the_wrong_tries_are_old_enough(tmp_path: Path) -> None:
    options = CentralOptions(walk_in_failures_per_kiosk=FailureWindow(3, 2.0))
    with central_with(tmp_path, options) as (central, admin):
        clerk = admin.create_clerk("Mme Martin", "CAF")
        with enrolled(central.url, admin, "Borne 1", "Mairie") as kiosk:
            code = new_code(central.url, clerk)["code"]
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            for _ in range(3):
                assert kiosk.walk_in(wrong).status_code == 404
            refused = kiosk.walk_in(code)
            assert error_code(refused, 429) == "too_many_attempts"
            retry_after = int(refused.headers["Retry-After"])
            assert 1 <= retry_after <= 2
            time.sleep(retry_after + 0.1)
            assert kiosk.walk_in(code).status_code == 201


def test_who_may_make_and_use_codes(site: Site, kiosk: Kiosk) -> None:
    with httpx.Client(base_url=site.url) as anonymous:
        assert error_code(anonymous.post(f"{V1}/clerk/walk-in-codes", json={}), 401) == "unauthorized"
        assert error_code(anonymous.post(f"{V1}/kiosk/walk-ins", json={"code": "123456"}), 401)
    # A kiosk cannot make codes for itself, nor a clerk use them.
    assert kiosk.client.post(f"{V1}/clerk/walk-in-codes", json={}).status_code == 401
    code = new_code(site.url, site.clerk)["code"]
    with clerk_client(site.url, site.clerk) as clerk:
        assert clerk.post(f"{V1}/kiosk/walk-ins", json={"code": code}).status_code == 401
    with clerk_client(site.url, site.clerk) as clerk:
        for body in (b"", b"[]", b'"x"'):
            response = clerk.post(
                f"{V1}/clerk/walk-in-codes", content=body, headers={"Content-Type": "application/json"}
            )
            assert error_code(response, 400) == "invalid_json"
    assert kiosk.walk_in(code).status_code == 201
    # A clerk app on another origin may ask for codes from a browser (CORS), like the rest of the clerk API.
    assert is_clerk_api(f"{V1}/clerk/walk-in-codes") and not is_clerk_api(f"{V1}/kiosk/walk-ins")


def test_codes_are_kept_hashed(site: Site, kiosk: Kiosk, tmp_path: Path) -> None:
    codes = [new_code(site.url, site.clerk)["code"] for _ in range(3)]
    data = b"".join(p.read_bytes() for p in tmp_path.glob("central.db*"))
    assert data and not any(code.encode() in data for code in codes)
    assert kiosk.walk_in(codes[0]).status_code == 201


# --------------------------------------------------------------------------- the staff PIN


def test_the_staff_pin_is_kept_and_served_as_its_hash_only(
    site: Site, kiosk: Kiosk, central: CentralThread, tmp_path: Path
) -> None:
    assert kiosk.config()["staff_pin_hash"] is None  # none set: the panel stays closed
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {site.admin_token}"}) as admin:
        answer = admin.put(f"{V1}/admin/config", json={"staff_pin": "04719253"})
        assert answer.status_code == 200 and "staff_pin" not in answer.json()
        assert "04719253" not in answer.text
    served = kiosk.config()["staff_pin_hash"]
    assert served.startswith("pbkdf2_sha256$") and "04719253" not in served
    assert pin_matches("04719253", served) and not pin_matches("4719253", served)
    assert kiosk.config()["poll_interval_seconds"] == 1  # the rest of the config is kept
    data = b"".join(p.read_bytes() for p in tmp_path.glob("central.db*"))
    assert served.encode() in data and b"04719253" not in data

    # Another PIN replaces it (with a salt of its own); null removes it.
    site.admin.configure(staff_pin="2468")
    again = kiosk.config()["staff_pin_hash"]
    assert pin_matches("2468", again) and not pin_matches("04719253", again)
    site.admin.configure(staff_pin=None)
    assert kiosk.config()["staff_pin_hash"] is None
    # The same through the central's own helper (demo, scripts).
    central.server.configure({"staff_pin": "9999"})
    assert pin_matches("9999", kiosk.config()["staff_pin_hash"])
    assert b"9999" not in b"".join(p.read_bytes() for p in tmp_path.glob("central.db*"))


@pytest.mark.parametrize(
    "pin", [4719, "123", "123456789", "12a4", "12 34", "١٢٣٤", "", True, ["1234"], {"pin": "1234"}]
)
def test_a_malformed_staff_pin_is_refused_and_changes_nothing(site: Site, kiosk: Kiosk, pin: Any) -> None:
    site.admin.configure(staff_pin="1357")
    before = kiosk.config()
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {site.admin_token}"}) as admin:
        refused = admin.put(f"{V1}/admin/config", json={"staff_pin": pin, "poll_interval_seconds": 99})
        assert (
            error_code(refused, 400) == "invalid_field" and "staff_pin" in refused.json()["error"]["message"]
        )
        # The hash is set through the PIN only.
        refused = admin.put(f"{V1}/admin/config", json={"staff_pin_hash": before["staff_pin_hash"]})
        assert error_code(refused, 400) == "invalid_field"
    assert kiosk.config() == before


# --------------------------------------------------------------------------- the call, as for any appointment


@pytest.mark.e2e
async def test_the_staff_start_a_walk_in_on_the_kiosk_and_the_clerk_bot_serves_it(
    site: Site, tmp_path: Path
) -> None:
    """The real kiosk engine (its staff commands) against this central: PIN from the central's config,
    the clerk's code, the kiosk joins by itself, the bot answers as for any appointment."""
    from kiosk_client.core.session import EndReason
    from kiosk_client.core.staff_access import Verdict

    from .kiosk_rig import Recorder, make_engine, wait_for

    site.admin.configure(staff_pin="246810")
    token = await asyncio.to_thread(enrolled_token, site.url, site.enrollment_code)
    recorder = Recorder()
    engine = make_engine(site.url, token, tmp_path / "kiosk", recorder)
    run = asyncio.create_task(engine.run())
    bot = ClerkBot(site.url, site.clerk.token, hold_s=1.0)
    try:
        await wait_for(lambda: engine._config.staff_pin_hash is not None and not engine.reset.checking, 20)
        assert (await engine.staff_unlock("246810")).verdict is Verdict.OPENED
        assert await engine.staff_walk_in("12345") == "malformed_code"  # 5 digits: said at once, not sent
        code = await bot.create_walk_in_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        assert await engine.staff_walk_in(wrong) == "walk_in_code_unknown"
        assert await engine.staff_walk_in(f"{code[:3]} {code[3:]}") is None
        assert await engine.staff_walk_in(code) == "busy"
        [listed] = await bot.appointments()
        assert listed["walk_in"] is True
        [report] = await asyncio.wait_for(bot.serve_next(), 30)
        assert report.appointment_id == listed["id"]
        assert report.video_frames > 5 and report.ended_by == "clerk"
        await wait_for(lambda: bool(recorder.records()), 10)
        [record] = recorder.records()
        assert record.appointment_id == listed["id"] and record.end_reason is EndReason.CLERK_HUNG_UP
        assert record.remote_video_frames > 5
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await bot.aclose()
