"""The fleet view for IT staff: which kiosks are down or unwell, and whose citizens are at risk today."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Browser, expect

from kiosk_client.adapters.central_http import HttpCentral
from kiosk_client.adapters.fakes import tiny_png
from kiosk_client.central.fleet import fleet_view
from kiosk_client.core.commands import CommandResult, Outcome
from kiosk_client.core.models import Heartbeat

from . import test_central_http
from .conftest import Site
from .kiosk_rig import enrolled_token
from .test_session_reports_central import a_report

kiosk = test_central_http.kiosk  # the enrolled kiosk's HttpCentral (a fixture)
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def a_kiosk(kiosk_id: str, seen_s_ago: float | None, **fields: object) -> dict[str, object]:
    seen = None if seen_s_ago is None else (NOW - timedelta(seconds=seen_s_ago)).isoformat()
    row: dict[str, object] = {
        "id": kiosk_id, "name": kiosk_id, "site_name": "Site", "token_hash": "h", "last_seen": seen,
        "last_state": "idle", "last_devices": '{"camera": "ok"}', "software_version": "1.0",
        "last_preflight": None,
    }  # fmt: skip
    return row | fields


def appointment(appointment_id: str, hours_from_now: float) -> dict[str, object]:
    start = NOW + timedelta(hours=hours_from_now)
    return {"id": appointment_id, "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
            "service": "CAF"}  # fmt: skip


def test_problems_and_risks_follow_what_each_kiosk_last_said() -> None:
    kiosks = [
        a_kiosk("fine", 10),
        a_kiosk("silent", 200),  # three heartbeats missed
        a_kiosk("no-camera", 5, last_devices='{"camera": "missing", "microphone": "ok"}'),
        a_kiosk("dirty", 5),
        a_kiosk("unenrolled", None, token_hash=None),
        a_kiosk("preflight", 5, last_preflight='{"at_risk": true, "problems": ["relay"]}'),
        a_kiosk("broken-json", 5, last_devices="{not json", last_preflight="[1"),
    ]
    reports = [
        {"kiosk_id": "dirty", "passed": 0, "reported_at": "t1", "trigger": "session_end"},
        {"kiosk_id": "fine", "passed": 0, "reported_at": "t1", "trigger": "session_end"},
        {
            "kiosk_id": "fine",
            "passed": 1,
            "reported_at": "t2",
            "trigger": "session_end",
        },  # the last one counts
    ]
    today = {
        "fine": [appointment("a1", 1)],
        "silent": [appointment("a2", 2), appointment("done", -1)],
        "no-camera": [appointment("a3", 3)],
        "dirty": [appointment("ended", 0.1)],
    }
    view = fleet_view(kiosks, reports, today, frozenset({"ended"}), NOW)
    by_id = {k["id"]: k for k in view["kiosks"]}
    assert by_id["fine"]["problems"] == [] and by_id["fine"]["online"] and not by_id["fine"]["at_risk"]
    assert by_id["fine"]["last_reset_check"] == {"passed": True, "at": "t2", "trigger": "session_end"}
    assert by_id["silent"]["problems"] == ["offline"] and not by_id["silent"]["online"]
    assert [a["id"] for a in by_id["silent"]["appointments_left_today"]] == ["a2"]  # not the one over
    assert by_id["silent"]["at_risk"] and by_id["no-camera"]["at_risk"]
    assert by_id["no-camera"]["problems"] == ["device_camera_missing"]
    assert by_id["dirty"]["problems"] == ["reset_check_failed"]
    assert not by_id["dirty"]["at_risk"]  # its only appointment's call has ended
    assert by_id["unenrolled"]["problems"] == ["not_enrolled"]
    assert by_id["preflight"]["problems"] == ["preflight_at_risk"]
    assert by_id["broken-json"]["problems"] == [] and by_id["broken-json"]["devices"] == {}
    assert [k["id"] for k in view["kiosks"][:2]] == ["no-camera", "silent"]  # at risk first
    assert view["summary"] == {
        "kiosks": 7, "online": 5, "with_problems": 5, "at_risk": 2, "appointments_at_risk": 2,
        "versions": {"1.0": 7}, "off_target": 0, "update_failed": 0,
    }  # fmt: skip


async def test_the_central_shows_a_kiosk_missing_its_camera_with_its_appointment_at_risk(
    site: Site, kiosk: HttpCentral
) -> None:
    booked = site.appointment_in(3600)
    await kiosk.send_heartbeat(
        Heartbeat(state="idle", appointment_id=None, devices={"camera": "missing"}, software_version="2.1")
    )
    await kiosk.post_session_report(a_report(ok=False))
    async with httpx.AsyncClient(base_url=site.url) as client:
        refused = await client.get("/api/v1/admin/fleet", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        view = (
            await client.get("/api/v1/admin/fleet", headers={"Authorization": f"Bearer {site.admin_token}"})
        ).json()
    [row] = view["kiosks"]
    assert row["id"] == site.kiosk_id and row["online"] and row["software_version"] == "2.1"
    assert row["problems"] == ["device_camera_missing", "reset_check_failed"]
    assert [a["id"] for a in row["appointments_left_today"]] == [booked["id"]] or booked_tomorrow(booked)
    assert view["summary"]["versions"] == {"2.1": 1}


def booked_tomorrow(booked: dict[str, object]) -> bool:
    """An appointment an hour from now is tomorrow when the test runs in Paris's last hour of the day."""
    start = datetime.fromisoformat(str(booked["start"]))
    return start.astimezone(PARIS).date() != datetime.now(PARIS).date()


def test_the_fleet_page_asks_for_the_token_and_lists_the_kiosks(site: Site, browser: Browser) -> None:
    page = browser.new_page()
    try:
        page.goto(site.url + "/fleet")
        page.fill("#token", "not-the-token")
        page.click("text=Afficher")
        expect(page.locator("#status")).to_have_text("Jeton refusé.")
        page.fill("#token", site.admin_token)
        page.click("text=Afficher")
        row = page.locator(f'tr[data-kiosk="{site.kiosk_id}"]')
        expect(row).to_contain_text("non enrôlée")  # an enrolment code made, never used
        expect(page.locator("#summary")).to_contain_text("1 borne, 0 en ligne")
    finally:
        page.close()


def test_the_fleet_page_shows_the_version_target_and_asks_a_kiosk_for_a_screenshot(
    site: Site, browser: Browser
) -> None:
    token = enrolled_token(site.url, site.enrollment_code)

    async def kiosk_answers() -> tuple[str, ...]:
        """The kiosk's side, with its real adapter: hears the command, sends its picture."""
        central = HttpCentral(site.url, token)
        try:
            heard = await central.send_heartbeat(Heartbeat("idle", None, {"camera": "ok"}, "1.0"))
            for command in heard:
                await central.post_command_result(
                    CommandResult(command.id, Outcome.DONE, screenshot=tiny_png(40, 30))
                )
            return tuple(c.kind.value for c in heard)
        finally:
            await central.aclose()

    httpx.put(
        site.url + "/api/v1/admin/software-targets",
        json={"default": "1.1"},
        headers={"Authorization": f"Bearer {site.admin_token}"},
    ).raise_for_status()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # the kiosk is seen, running 1.0
        assert pool.submit(asyncio.run, kiosk_answers()).result(timeout=30) == ()
    page = browser.new_page()
    try:
        page.goto(site.url + "/fleet")
        page.fill("#token", site.admin_token)
        page.click("text=Afficher")
        row = page.locator(f'tr[data-kiosk="{site.kiosk_id}"]')
        expect(row).to_contain_text("1.0 → cible 1.1 (parc)")  # staged updates: not on its target
        expect(row).to_contain_text("cible 1.1 non téléversée")  # and no release of it to install
        expect(page.locator("#summary")).to_contain_text("1 borne hors de la version cible")
        row.locator('button[data-command="screenshot"]').click()
        expect(row.locator('li[data-state="pending"]')).to_contain_text(
            "Capture d'écran : en attente de la borne"
        )
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # the page's loop runs on this thread
            assert pool.submit(asyncio.run, kiosk_answers()).result(timeout=30) == ("screenshot",)
        expect(row.locator('li[data-state="done"]')).to_contain_text(
            "Capture d'écran : faite", timeout=10_000
        )
        picture = row.locator("img")
        expect(picture).to_have_attribute("src", re.compile(r"^blob:"))
        page.wait_for_function(
            "img => img.complete && img.naturalWidth === 40", arg=picture.element_handle(), timeout=10_000
        )
        assert picture.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 30]
    finally:
        page.close()


def test_each_kiosks_staged_update_and_a_target_never_uploaded_are_shown() -> None:
    kiosks = [
        a_kiosk("failed", 5, last_update='{"state": "failed", "version": "1.1", "error": "rolled back"}'),
        a_kiosk("waiting", 5, last_update='{"state": "waiting_idle", "version": "1.1", "error": null}'),
        a_kiosk("pinned", 5, last_update=None),
        a_kiosk("garbled", 5, last_update="[1"),
    ]
    targets = {k["id"]: ("1.1", "fleet") for k in kiosks} | {"pinned": ("1.2", "pin")}
    view = fleet_view(kiosks, [], {}, frozenset(), NOW, targets, frozenset({"1.1"}))
    by_id = {k["id"]: k for k in view["kiosks"]}
    assert by_id["failed"]["update"] == {"state": "failed", "version": "1.1", "error": "rolled back"}
    assert by_id["waiting"]["update"]["state"] == "waiting_idle"
    assert by_id["garbled"]["update"] is None
    assert [k for k, row in by_id.items() if row["software_target_missing"]] == ["pinned"]  # 1.2: no release
    assert view["summary"]["update_failed"] == 1
