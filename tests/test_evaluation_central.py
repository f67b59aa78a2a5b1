"""The council's figures: made right from appointments, calls, session reports and ratings; the clerk's
rating and the kiosk's usage fields validated (hostile input: a 400 that changes nothing); the export
in JSON and in CSV a spreadsheet cannot turn into a formula."""

from __future__ import annotations

import copy
import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from kiosk_client.adapters.central_http import HttpCentral
from kiosk_client.central.evaluation import Period, spreadsheet_safe, usage_csv, usage_figures
from kiosk_client.core.errors import CentralRejected
from kiosk_client.core.models import SessionDescription

from . import test_central_http
from .conftest import Site
from .test_session_reports_central import a_report

kiosk = test_central_http.kiosk  # the enrolled kiosk's HttpCentral (a fixture)

NOW = datetime(2026, 12, 7, 18, tzinfo=UTC)


def appointment(ident: str, site: str, service: str, start: str, **row: Any) -> dict[str, Any]:
    begins = datetime.fromisoformat(start)
    values = {
        "id": ident, "kiosk_id": "k1", "service": service, "start": start,
        "end": (begins + timedelta(minutes=30)).isoformat(), "walk_in": 0, "site_name": site,
        "answered": 0, "clerk_face": None, "clerk_rated_at": None, "clerk_remark": None, "cancelled_at": None,
    }  # fmt: skip
    return {**values, **row}


def report(appointment_id: str, kiosk_id: str = "k1", passed: bool = True, **session: Any) -> dict[str, Any]:
    return {
        "kiosk_id": kiosk_id,
        "trigger": "session_end",
        "passed": passed,
        "session": {"appointment_id": appointment_id, "end_reason": "clerk_hung_up", **session},
    }


def test_the_figures_per_site_and_service() -> None:
    rated = {"clerk_face": 2, "clerk_rated_at": "2026-12-07T10:40:00+00:00", "clerk_remark": "Son coupé"}
    appointments = [
        appointment("a", "Saint-Amand", "CAF", "2026-12-07T10:00:00+00:00", answered=1, **rated),
        appointment("b", "Saint-Amand", "CAF", "2026-12-07T11:00:00+00:00"),  # nobody answered: no-show
        appointment("c", "Saint-Amand", "CAF", "2026-12-07T19:00:00+00:00"),  # still to come
        # Cancelled in the booking tool: neither an appointment to keep nor a no-show.
        appointment(
            "g", "Saint-Amand", "CAF", "2026-12-07T08:00:00+00:00", cancelled_at="2026-12-06T18:00:00+00:00"
        ),
        # Answered, dropped, never back: the current call has no answer, the report says it was met.
        appointment("d", "Saint-Amand", "CPAM", "2026-12-06T09:00:00+00:00", walk_in=1),
        appointment("e", "Saint-Amand", "CAF", "2026-11-30T09:00:00+00:00", answered=1),  # before the period
        appointment("f", "Toucy", "CAF", "2026-12-07T09:00:00+00:00", answered=1, clerk_rated_at="x"),
    ]
    reports = [
        report("a", call_seconds=100.0, connections=1, documents_sent=1),
        report("a", call_seconds=600.0, connections=2, documents_sent=2, control_used=True),  # the latest
        report("a", kiosk_id="k2", call_seconds=9999.0, documents_sent=50),  # another kiosk's: ignored
        report("d", passed=False, end_reason="call_failed", call_seconds=300, connections=1),
        report("f", answer_received_at=5.0),  # a kiosk without the usage fields: a session all the same
    ]
    citizen = [
        {"site_name": "Saint-Amand", "service": "CAF", "day": "2026-12-07", "rating": r, "count": n}
        for r, n in (("5", 2), ("4", 1), ("skipped", 1), ("no_answer", 3))
    ] + [{"site_name": "Saint-Amand", "service": "CAF", "day": "2026-11-30", "rating": "1", "count": 1}]
    rows = usage_figures(appointments, reports, citizen, Period(date(2026, 12, 1), date(2026, 12, 7)), NOW)
    assert list(rows) == [("Saint-Amand", "CAF"), ("Saint-Amand", "CPAM"), ("Toucy", "CAF")]
    caf = rows[("Saint-Amand", "CAF")].to_json()
    assert (
        caf["appointments"] == 3 and caf["sessions"] == 1 and caf["no_shows"] == 1 and caf["cancelled"] == 1
    )
    assert caf["duration_total_seconds"] == 600 and caf["duration_mean_seconds"] == 600
    assert caf["calls_dropped"] == 1 and caf["documents_sent"] == 2 and caf["remote_control_sessions"] == 1
    assert caf["citizen_ratings"] == {
        "faces": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 2}, "skipped": 1, "no_answer": 3, "mean": 4.67,
    }  # fmt: skip
    assert caf["clerk_ratings"] == {
        "faces": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0},
        "skipped": 0,
        "mean": 2.0,
    }
    assert caf["clerk_remarks"] == [{"day": "2026-12-07", "remark": "Son coupé"}]
    cpam = rows[("Saint-Amand", "CPAM")].to_json()
    assert cpam["sessions"] == 1 and cpam["walk_ins"] == 1 and cpam["no_shows"] == 0
    assert (
        cpam["calls_failed"] == 1
        and cpam["reset_checks_failed"] == 1
        and cpam["duration_mean_seconds"] == 300
    )
    toucy = rows[("Toucy", "CAF")].to_json()
    assert toucy["sessions"] == 1 and toucy["duration_mean_seconds"] is None
    assert toucy["clerk_ratings"]["skipped"] == 1 and toucy["clerk_ratings"]["mean"] is None
    everything = usage_figures(appointments, reports, citizen, Period(), NOW)
    assert everything[("Saint-Amand", "CAF")].appointments == 4
    assert everything[("Saint-Amand", "CAF")].citizen.faces[1] == 1


def test_csv_cells_never_become_formulas() -> None:
    for hostile in ('=HYPERLINK("http://x")', "+33 1", "-2", "@SUM(A1)", "\tcmd", "\r=1"):
        assert spreadsheet_safe(hostile) == "'" + hostile
    assert spreadsheet_safe("France Services") == "France Services" and spreadsheet_safe(None) == ""
    rows = usage_figures(
        [appointment("a", "=cmd|' /C calc'!A0", "@CAF", "2026-12-07T10:00:00+00:00", answered=1)],
        [report("a", call_seconds=61.0, connections=1)],
        [],
        Period(),
        NOW,
    )
    header, line = list(csv.reader(io.StringIO(usage_csv(rows))))
    assert header[:5] == ["site", "service", "appointments", "cancelled", "sessions"] and len(header) == len(
        line
    )
    assert line[0] == "'=cmd|' /C calc'!A0" and line[1] == "'@CAF"
    assert line[header.index("duration_total_seconds")] == "61" and line[header.index("citizen_mean")] == ""


# --------------------------------------------------------------------------- over HTTP, the reference central


def clerk_client(site: Site, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{site.url}/api/v1", headers={"Authorization": f"Bearer {token or site.clerk.token}"}
    )


async def a_finished_call(site: Site, kiosk: HttpCentral, seconds_ago: float = 60) -> str:
    made = site.appointment_in(-seconds_ago)
    ticket = await kiosk.post_offer(str(made["id"]), SessionDescription("v=0 offer", "offer"))
    async with clerk_client(site) as clerk:
        answered = await clerk.put(
            f"/appointments/{made['id']}/answer",
            json={"type": "answer", "sdp": "v=0 a", "call_id": ticket.call_id},
        )
        assert answered.status_code == 200
    await kiosk.hang_up(str(made["id"]), ticket.call_id, "citizen_hung_up")
    return str(made["id"])


async def test_the_clerk_rates_once_after_the_call_and_hostile_ratings_change_nothing(
    site: Site, kiosk: HttpCentral
) -> None:
    ongoing = str(site.appointment_in(-30)["id"])
    finished = await a_finished_call(site, kiosk)
    stranger = site.admin.create_clerk("M. Leroy", "CPAM")
    async with clerk_client(site) as clerk:
        early = await clerk.post(f"/clerk/appointments/{ongoing}/rating", json={"face": 4})
        assert early.status_code == 409 and early.json()["error"]["code"] == "call_not_ended"
        for body in (
            {"face": "5"}, {"face": True}, {"face": 6}, {"face": 0}, {}, {"face": 4, "extra": 1},
            {"face": 4, "remark": "x" * 501}, {"face": 4, "remark": "bip\x07"}, {"face": 4, "remark": 12},
        ):  # fmt: skip
            refused = await clerk.post(f"/clerk/appointments/{finished}/rating", json=body)
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_field", body
    async with clerk_client(site, stranger.token) as other:
        assert (
            await other.post(f"/clerk/appointments/{finished}/rating", json={"face": 1})
        ).status_code == 404
    assert site.admin.usage()["rows"][0]["clerk_ratings"]["faces"] == dict.fromkeys("12345", 0)
    async with clerk_client(site) as clerk:
        done = await clerk.post(
            f"/clerk/appointments/{finished}/rating", json={"face": 5, "remark": "  Dossier complet.\n"}
        )
        assert done.status_code == 204
        again = await clerk.post(f"/clerk/appointments/{finished}/rating", json={"face": 1})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_rated"
    [row] = site.admin.usage()["rows"]
    assert row["clerk_ratings"]["faces"]["5"] == 1 and row["clerk_ratings"]["mean"] == 5.0
    assert [r["remark"] for r in row["clerk_remarks"]] == ["Dossier complet."]


async def test_the_citizens_rating_is_kept_apart_from_the_report_and_bad_usage_fields_are_refused(
    site: Site, kiosk: HttpCentral
) -> None:
    finished = await a_finished_call(site, kiosk)
    good = copy.deepcopy(a_report())
    good["session"]["appointment_id"] = finished  # type: ignore[index]
    good["session"].update(call_seconds=300.0, connections=1, documents_sent=2, control_used=True,  # type: ignore[attr-defined]
                           citizen_rating=3)  # fmt: skip
    for key, value in (
        ("citizen_rating", 7), ("citizen_rating", True), ("citizen_rating", "great"), ("call_seconds", -1),
        ("call_seconds", 1e9), ("connections", 1.5), ("documents_sent", -2), ("control_used", "yes"),
    ):  # fmt: skip
        bad = copy.deepcopy(good)
        bad["report_id"] = "f" * 32
        bad["session"][key] = value  # type: ignore[index]
        with pytest.raises(CentralRejected) as refused:
            await kiosk.post_session_report(bad)
        assert refused.value.code == "invalid_field" and key in str(refused.value)
    assert site.admin.session_reports() == []
    await kiosk.post_session_report(good)
    await kiosk.post_session_report(good)  # sent again: counted once
    [kept] = site.admin.session_reports()
    assert "citizen_rating" not in kept["session"] and kept["session"]["documents_sent"] == 2
    [row] = site.admin.usage()["rows"]
    assert row["site"] == "France Services de Test" and row["service"] == "CAF"
    assert row["sessions"] == 1 and row["documents_sent"] == 2 and row["remote_control_sessions"] == 1
    assert row["citizen_ratings"]["faces"]["3"] == 1 and row["citizen_ratings"]["mean"] == 3.0
    assert row["duration_total_seconds"] == 300


async def test_the_export_checks_its_query_and_its_token(site: Site) -> None:
    today = datetime.now(UTC).date()
    site.appointment_in(-3600, minutes=10)  # over, never called: a no-show
    csv_text = site.admin.usage("csv", from_=str(today), to=str(today))
    header, line = list(csv.reader(io.StringIO(csv_text)))
    assert line[header.index("no_shows")] == "1" and line[header.index("site")] == "France Services de Test"
    assert site.admin.usage(from_=str(today + timedelta(days=1)))["rows"] == []
    async with httpx.AsyncClient(base_url=f"{site.url}/api/v1") as client:
        auth = {"Authorization": f"Bearer {site.admin_token}"}
        for query in ({"format": "xlsx"}, {"from": "07/12/2026"}, {"to": "2026-13-01"},
                      {"from": "2026-12-08", "to": "2026-12-07"}, {"from": "2026-12-07T00:00"}):  # fmt: skip
            bad = await client.get("/admin/usage", params=query, headers=auth)
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_query", query
        exported = await client.get("/admin/usage", params={"format": "csv"}, headers=auth)
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        assert (await client.get("/admin/usage")).status_code == 401
        clerk = {"Authorization": f"Bearer {site.clerk.token}"}
        assert (await client.get("/admin/usage", headers=clerk)).status_code == 401


async def test_the_survey_address_is_checked_and_served_to_kiosks(site: Site, kiosk: HttpCentral) -> None:
    async with httpx.AsyncClient(base_url=f"{site.url}/api/v1") as client:
        auth = {"Authorization": f"Bearer {site.admin_token}"}
        for wrong in ("http://example.org", "javascript:alert(1)", "https://a b", "https://" + "a" * 300, 7):
            refused = await client.put("/admin/config", json={"evaluation_url": wrong}, headers=auth)
            assert refused.status_code == 400 and "evaluation_url" in refused.json()["error"]["message"], (
                wrong
            )
        assert (await kiosk.fetch_config()).evaluation_url is None  # nothing changed
        link = "https://www.plus.transformation.gouv.fr/"
        assert (
            await client.put("/admin/config", json={"evaluation_url": link}, headers=auth)
        ).status_code == 200
        assert (await kiosk.fetch_config()).evaluation_url == link
        assert (
            await client.put("/admin/config", json={"evaluation_url": None}, headers=auth)
        ).status_code == 200
        assert (await kiosk.fetch_config()).evaluation_url is None
