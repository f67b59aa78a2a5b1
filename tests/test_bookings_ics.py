"""ICS feeds as a source of bookings: the tolerant parser (folded lines, TZID Europe/Paris, UTC `Z`,
floating times, DURATION, STATUS:CANCELLED, SEQUENCE; all-day, recurring and broken events skipped,
hostile feeds refused), and a feed polled from a FAKE RDV Service Public's `/calendrier/<uid>.ics`
(recorded shape) kept in line with the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from kiosk_client.central.bookings import BookingError, IcsFeed
from kiosk_client.central.bookings_ics import parse_ics, source_name, sync_feed
from kiosk_client.central.server import CentralThread
from kiosk_client.central.store import Store

from .fake_rdv_service_public import CALENDAR_UID, PARIS, FakeRdvServicePublic, recorded
from .kiosk_rig import wait_for

UTC_ZONE = ZoneInfo("UTC")


def calendar(*events: str, method: str = "PUBLISH") -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nMETHOD:{method}\r\n{body}END:VCALENDAR\r\n"


def test_the_recorded_rdv_service_public_feed_reads_as_three_events() -> None:
    parsed = parse_ics(recorded("calendrier.ics").decode(), PARIS)
    assert parsed.skipped == 0
    by_uid = {e.uid: e for e in parsed.events}
    first = by_uid["7d1c2b3a-4e5f-4a6b-8c9d-0e1f2a3b4c5d"]
    assert first.start == datetime(2026, 12, 14, 14, 0, tzinfo=UTC)  # 15:00 in Paris, winter time
    assert first.end - first.start == timedelta(minutes=30)
    assert first.location == "France Services de Mauriac (2 place de la Poste, Mauriac, 15200)"  # unescaped
    assert first.summary == "Rendez-vous CAF en visio à France Services"
    assert not first.cancelled and first.sequence == 0
    assert by_uid["5c0e3a52-2a7e-4c43-9a56-1f0d1e2b7c11"].cancelled  # STATUS:CANCELLED
    # The VTIMEZONE's own DTSTART/RRULE lines are not events.
    assert len(parsed.events) == 3


def test_folding_line_endings_and_time_forms() -> None:
    text = calendar(
        # folded mid-word, and inside a UTF-8 character's neighbourhood, with LF endings mixed in
        "UID:a\r\nDTSTART;TZID=Europe/Paris:20260701T0930\r\n 00\r\nDTEND;TZID=Europe/Paris:20260701T100000\r\n"
        'SUMMARY:Caf\r\n é du matin\\, ensemble\nLOCATION;LANGUAGE=fr:"Mairie"',
        "UID:b\r\nDTSTART:20260701T073000Z\r\nDURATION:PT45M\r\nSEQUENCE:3",
        "UID:c\r\nDTSTART:20260701T093000\r\nDTEND:20260701T100000",  # floating: the feed's zone
        'UID:d\r\nDTSTART;TZID="/Europe/Paris":20260701T093000\r\nDTEND;TZID=Romance Standard Time:20260701T100000',
    )
    events = {e.uid: e for e in parse_ics(text, PARIS).events}
    assert events["a"].start == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)  # summer time in Paris
    assert events["a"].summary == "Café du matin, ensemble"
    assert events["b"].start == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    assert events["b"].end - events["b"].start == timedelta(minutes=45) and events["b"].sequence == 3
    assert events["c"].start == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    assert events["d"].end == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)  # an unknown TZID counts as the feed's
    assert parse_ics(text, UTC_ZONE).events[2].start == datetime(2026, 7, 1, 9, 30, tzinfo=UTC)


def test_events_that_are_not_appointments_or_cannot_be_read_are_skipped_not_fatal() -> None:
    text = calendar(
        "UID:ok\r\nDTSTART:20260701T073000Z\r\nDTEND:20260701T080000Z",
        "UID:allday\r\nDTSTART;VALUE=DATE:20260701\r\nDTEND;VALUE=DATE:20260702",
        "UID:weekly\r\nDTSTART:20260701T073000Z\r\nDTEND:20260701T080000Z\r\nRRULE:FREQ=WEEKLY",
        "DTSTART:20260701T073000Z\r\nDTEND:20260701T080000Z",  # no UID
        "UID:backwards\r\nDTSTART:20260701T073000Z\r\nDTEND:20260701T070000Z",
        "UID:days\r\nDTSTART:20260701T073000Z\r\nDURATION:P3D",
        "UID:garbled\r\nDTSTART:2026-07-01 07:30\r\nDTEND:20260701T080000Z",
        "UID:feb30\r\nDTSTART:20260230T073000Z\r\nDTEND:20260230T080000Z",
        "UID:noend\r\nDTSTART:20260701T073000Z",
    )
    parsed = parse_ics(text, PARIS)
    assert [e.uid for e in parsed.events] == ["ok"]
    assert parsed.skipped == 8
    assert {"allday", "weekly", "garbled", "feb30"} <= parsed.skipped_uids


def test_a_cancel_method_cancels_every_event() -> None:
    text = calendar("UID:x\r\nDTSTART:20260701T073000Z\r\nDTEND:20260701T080000Z", method="CANCEL")
    assert parse_ics(text, PARIS).events[0].cancelled


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html><body>Maintenance</body></html>",
        "BEGIN:VCARD\r\nEND:VCARD",
        "BEGIN:VCALENDAR\r\n" + "BEGIN:X\r\n" * 20,
        "BEGIN:VCALENDAR\r\nX-LONG:" + "a\r\n " * 9000,
        calendar(*[f"UID:{i}\r\nDTSTART:20260701T073000Z\r\nDTEND:20260701T080000Z" for i in range(5001)]),
    ],
    ids=["empty", "html", "vcard", "nested", "endless-line", "too-many-events"],
)
def test_what_is_not_a_calendar_or_is_hostile_is_refused(text: str) -> None:
    with pytest.raises(BookingError):
        parse_ics(text, PARIS)


# --------------------------------------------------------------------------- a feed, polled


@pytest.fixture
async def fake() -> AsyncIterator[FakeRdvServicePublic]:
    server = FakeRdvServicePublic()
    await server.start()
    yield server
    await server.stop()


def feed_for(day: datetime) -> bytes:
    """The recorded feed with its rdvs moved to `day` (a Paris date)."""
    return recorded("calendrier.ics").replace(
        b"20261214T", day.astimezone(PARIS).strftime("%Y%m%dT").encode()
    )


async def test_a_feed_creates_updates_and_cancels_appointments(
    fake: FakeRdvServicePublic, tmp_path: Path
) -> None:
    store = Store(tmp_path / "central.db")
    mauriac = store.create_kiosk("Borne 1", "France Services de Mauriac")
    clerk_id, _ = store.create_clerk("Mme Martin", "CAF")
    feed = IcsFeed(
        "martin", f"{fake.url}/calendrier/{CALENDAR_UID}.ics", clerk_id,
        kiosks=(("France Services de Mauriac", mauriac),),
    )  # fmt: skip
    day = datetime.now(UTC) + timedelta(days=2)
    fake.ics = feed_for(day)

    async def sync() -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            report = await sync_feed(store, feed, client)
        assert report.ok, report
        return report.outcomes

    def live() -> dict[str, str]:
        rows = store.bookings(source_name(feed))
        return {
            r["external_id"]: store.appointment(r["appointment_id"])["start"]
            for r in rows
            if r["state"] == "active"
        }

    # One confirmed at Mauriac, one cancelled, one at Salers (no kiosk for that location).
    assert await sync() == {"created": 1, "unchanged": 1, "ignored": 1}
    [(uid, start)] = live().items()
    assert uid == "7d1c2b3a-4e5f-4a6b-8c9d-0e1f2a3b4c5d"
    assert datetime.fromisoformat(start).astimezone(PARIS).hour == 15
    assert store.appointment(store.booking(source_name(feed), uid)["appointment_id"])["service"] == "CAF"

    # Moved by an hour, with a SEQUENCE as other tools write it: updated in place.
    fake.ics = fake.ics.replace(b"T150000", b"T160000").replace(b"T153000", b"T163000")
    fake.ics = fake.ics.replace(b"UID:7d1c2b3a", b"SEQUENCE:2\r\nUID:7d1c2b3a")
    assert (await sync())["updated"] == 1
    assert datetime.fromisoformat(live()[uid]).astimezone(PARIS).hour == 16

    # A stale copy (a lower SEQUENCE, e.g. from a cache) changes nothing.
    fake.ics = fake.ics.replace(b"SEQUENCE:2", b"SEQUENCE:1").replace(b"T160000", b"T090000")
    assert (await sync()).get("stale") == 1
    assert datetime.fromisoformat(live()[uid]).astimezone(PARIS).hour == 16

    # Gone from the feed (deleted in RDV Service Public): its appointment is cancelled.
    fake.ics = feed_for(day).replace(b"UID:7d1c2b3a", b"UID:00000000")
    outcomes = await sync()
    assert outcomes["cancelled"] == 1 and outcomes["created"] == 1
    assert set(live()) == {"00000000-4e5f-4a6b-8c9d-0e1f2a3b4c5d"}
    assert store.booking(source_name(feed), uid)["state"] == "missing"


async def test_a_feed_that_fails_changes_nothing(fake: FakeRdvServicePublic, tmp_path: Path) -> None:
    store = Store(tmp_path / "central.db")
    kiosk_id = store.create_kiosk("Borne 1", "France Services de Mauriac")
    clerk_id, _ = store.create_clerk("Mme Martin", "CAF")
    feed = IcsFeed("martin", f"{fake.url}/calendrier/{CALENDAR_UID}.ics", clerk_id, kiosk_id=kiosk_id)
    fake.ics = feed_for(datetime.now(UTC) + timedelta(days=2))
    async with httpx.AsyncClient() as client:
        assert (await sync_feed(store, feed, client)).outcomes["created"] == 2
        before = [tuple(r) for r in store.bookings()]
        for ics, url, error in (
            (b"<html>502 Bad Gateway</html>", feed.url, "not an iCalendar document"),
            (b"", feed.url.replace(CALENDAR_UID, "nosuch"), "answered 404"),
            (b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"a" * (3 * 1024 * 1024), feed.url, "larger than"),
        ):
            fake.ics = ics
            report = await sync_feed(store, IcsFeed(feed.id, url, clerk_id, kiosk_id=kiosk_id), client)
            assert not report.ok and report.error is not None and error in report.error, report
            assert [tuple(r) for r in store.bookings()] == before


async def test_the_central_polls_a_feed_once_it_is_configured(
    fake: FakeRdvServicePublic, tmp_path: Path
) -> None:
    """No sync asked for: the central's own loop polls a feed as soon as the admin configures it."""
    fake.ics = feed_for(datetime.now(UTC) + timedelta(days=1))
    with CentralThread(tmp_path / "central.db") as central:
        store = central.server.store
        kiosk_id = store.create_kiosk("Borne 1", "France Services de Mauriac")
        clerk_id, _ = store.create_clerk("Mme Martin", "CAF")
        feed = {
            "id": "martin",
            "url": f"{fake.url}/calendrier/{CALENDAR_UID}.ics",
            "clerk_id": clerk_id,
            "kiosk_id": kiosk_id,
        }
        headers = {"Authorization": f"Bearer {central.admin_token}"}
        async with httpx.AsyncClient(base_url=central.url + "/api/v1", headers=headers) as admin:
            response = await admin.put("/admin/bookings/config", json={"ics_feeds": [feed]})
            assert response.status_code == 200, response.text
            await wait_for(lambda: len(store.bookings("ics:martin")) == 3, 10)
            reports: list[dict[str, object]] = []
            while not reports:  # the poll's report lands once its last booking is written: a moment after
                reports = (await admin.get("/admin/bookings")).json()["sources"]
            [report] = reports
        assert report["source"] == "ics:martin" and report["ok"]
        assert report["outcomes"] == {"created": 2, "unchanged": 1}  # the cancelled one made nothing
