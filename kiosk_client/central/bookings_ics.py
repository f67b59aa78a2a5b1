"""iCalendar feeds as a source of bookings (RFC 5545), e.g. an RDV Service Public agent's
`/calendrier/<uid>.ics` (`IcsCalendarController`: one VEVENT per rdv from a month ago on, UID = the
rdv's uuid, DTSTART/DTEND with TZID=Europe/Paris, STATUS CONFIRMED or CANCELLED, no SEQUENCE).

A small parser of our own rather than a package: only VEVENTs' UID, SEQUENCE, DTSTART, DTEND or
DURATION, STATUS, SUMMARY and LOCATION matter; it must be tolerant (lines folded anywhere, LF or CRLF,
unknown properties and components, times in UTC `Z`, with a TZID, or floating) and bounded against a
hostile feed (size, lines, events), which is simpler to hold in 150 lines than around a general
library (`icalendar` is tolerant but builds the whole tree; `ical` is strict and pulls pydantic).
Recurring events (RRULE) are not kiosk appointments: they are skipped, as are all-day events.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from .bookings import (
    BookingError,
    BookingNews,
    BookingsConfig,
    IcsFeed,
    SourceReport,
    apply,
    check_span,
    mark_missing,
    service_for,
)
from .store import BookedAppointment, Store, utcnow

MAX_FEED_BYTES = 2 * 1024 * 1024
MAX_EVENTS = 5000
MAX_LINE = 8000  # an unfolded content line
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)")
_DURATION = re.compile(r"([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


@dataclass(frozen=True)
class IcsEvent:
    uid: str
    sequence: int
    start: datetime
    end: datetime
    cancelled: bool
    summary: str | None
    location: str | None


@dataclass(frozen=True)
class IcsCalendar:
    events: list[IcsEvent]
    skipped: int  # VEVENTs left out: malformed, all-day or recurring
    skipped_uids: frozenset[str] = frozenset()  # theirs, when they had one (not taken as deleted)


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
            if len(lines[-1]) > MAX_LINE:
                raise BookingError(f"a content line longer than {MAX_LINE} characters")
        elif raw:
            lines.append(raw)
    return lines


def _split(line: str) -> tuple[str, dict[str, str], str]:
    """NAME;PARAM=VALUE;…:value → (NAME, {PARAM: VALUE}, value); quoted parameter values may hold ; and :."""
    i, n = 0, len(line)
    while i < n and line[i] not in ";:":
        i += 1
    name, params = line[:i].upper(), {}
    while i < n and line[i] == ";":
        j = line.find("=", i)
        if j < 0:
            break
        key, j = line[i + 1 : j].upper(), j + 1
        if j < n and line[j] == '"':
            k = line.find('"', j + 1)
            k = n if k < 0 else k
            value, i = line[j + 1 : k], k + 1
        else:
            k = j
            while k < n and line[k] not in ";:":
                k += 1
            value, i = line[j:k], k
        params[key] = value
    return name, params, line[i + 1 :] if i < n and line[i] == ":" else ""


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _moment(value: str, params: dict[str, str], default_tz: ZoneInfo) -> datetime:
    if params.get("VALUE", "").upper() == "DATE" or len(value) == 8:
        raise BookingError("an all-day event")
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        raise BookingError(f"not a date-time: {value[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if match.group(7):
        zone: tzinfo = UTC
    elif "TZID" in params:
        try:  # a TZID of the IANA database; others (Windows names, custom VTIMEZONEs) count as the feed's
            zone = ZoneInfo(params["TZID"].strip().lstrip("/"))
        except (ZoneInfoNotFoundError, ValueError):
            zone = default_tz
    else:
        zone = default_tz
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=zone)
    except ValueError:
        raise BookingError(f"not a date-time: {value[:40]!r}") from None


def _duration(value: str) -> timedelta:
    match = _DURATION.fullmatch(value.strip())
    if match is None or not any(match.groups()[1:]):
        raise BookingError(f"not a duration: {value[:40]!r}")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups()[1:])
    span = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -span if match.group(1) == "-" else span


def _event(props: dict[str, tuple[dict[str, str], str]], default_tz: ZoneInfo, cancel_all: bool) -> IcsEvent:
    uid = props.get("UID", ({}, ""))[1].strip()
    if not uid or len(uid) > 255:
        raise BookingError("no UID")
    if "RRULE" in props or "RECURRENCE-ID" in props:
        raise BookingError("a recurring event")
    if "DTSTART" not in props:
        raise BookingError("no DTSTART")
    start = _moment(props["DTSTART"][1], props["DTSTART"][0], default_tz)
    if "DTEND" in props:
        end = _moment(props["DTEND"][1], props["DTEND"][0], default_tz)
    elif "DURATION" in props:
        end = start + _duration(props["DURATION"][1])
    else:
        raise BookingError("no DTEND nor DURATION")
    check_span(start, end)
    sequence = props.get("SEQUENCE", ({}, "0"))[1].strip() or "0"
    if not (sequence.isascii() and sequence.isdigit() and len(sequence) < 10):
        raise BookingError("a bad SEQUENCE")
    status = props.get("STATUS", ({}, ""))[1].strip().upper()
    summary = _unescape(props["SUMMARY"][1]).strip()[:200] if "SUMMARY" in props else None
    location = _unescape(props["LOCATION"][1]).strip()[:500] if "LOCATION" in props else None
    return IcsEvent(uid, int(sequence), start, end, cancel_all or status == "CANCELLED", summary, location)


def parse_ics(text: str, default_tz: ZoneInfo) -> IcsCalendar:
    """The VEVENTs of a calendar; BookingError if it is not one. A VEVENT that cannot be read is
    skipped (and counted), not fatal: one odd event must not hide the others."""
    lines = _unfold(text.lstrip("\ufeff"))
    if not lines or lines[0].strip().upper() != "BEGIN:VCALENDAR":
        raise BookingError("not an iCalendar document (no BEGIN:VCALENDAR)")
    events: list[IcsEvent] = []
    skipped = 0
    skipped_uids: set[str] = set()
    depth: list[str] = []
    props: dict[str, tuple[dict[str, str], str]] | None = None
    cancel_all = False
    for line in lines:
        name, params, value = _split(line)
        if name == "BEGIN":
            depth.append(value.strip().upper())
            if depth == ["VCALENDAR", "VEVENT"]:
                props = {}
            if len(depth) > 8:
                raise BookingError("components nested too deep")
        elif name == "END":
            if depth == ["VCALENDAR", "VEVENT"] and props is not None:
                try:
                    events.append(_event(props, default_tz, cancel_all))
                except BookingError:
                    skipped += 1
                    skipped_uids.add(props.get("UID", ({}, ""))[1].strip())
                if len(events) + skipped > MAX_EVENTS:
                    raise BookingError(f"more than {MAX_EVENTS} events")
                props = None
            if depth:
                depth.pop()
        elif depth == ["VCALENDAR", "VEVENT"] and props is not None:
            props.setdefault(name, (params, value))  # the first one counts
        elif depth == ["VCALENDAR"] and name == "METHOD":
            cancel_all = value.strip().upper() == "CANCEL"
    return IcsCalendar(events, skipped, frozenset(skipped_uids))


async def fetch(client: httpx.AsyncClient, url: str) -> tuple[str, datetime]:
    """The feed's text and the time its server answered (its Date header, else ours); BookingError."""
    try:
        async with client.stream("GET", url, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                raise BookingError(f"the feed answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    raise BookingError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
            try:
                at = parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
            except (KeyError, TypeError, ValueError):
                at = utcnow()
    except httpx.HTTPError as exc:
        raise BookingError(f"the feed could not be fetched: {type(exc).__name__}") from None
    return body.decode("utf-8", errors="replace"), at


def event_news(store: Store, feed: IcsFeed, event: IcsEvent, version: datetime) -> BookingNews:
    if event.cancelled:
        return BookingNews(event.uid, event.sequence, version, "cancelled", "STATUS:CANCELLED")
    location = (event.location or "").casefold()
    kiosk_id = next(
        (k for prefix, k in feed.kiosks if location.startswith(prefix.strip().casefold())), feed.kiosk_id
    )
    if kiosk_id is None:
        return BookingNews(event.uid, event.sequence, version, "ignored", "no kiosk for its location")
    service = service_for(store, feed.clerk_id, feed.service)
    if service is None:
        return BookingNews(event.uid, event.sequence, version, "ignored", "the feed's clerk does not exist")
    booked = BookedAppointment(kiosk_id, feed.clerk_id, service[:200], event.start, event.end, None)
    return BookingNews(event.uid, event.sequence, version, "active", booked=booked)


def source_name(feed: IcsFeed) -> str:
    return f"ics:{feed.id}"


async def sync_feed(store: Store, feed: IcsFeed, client: httpx.AsyncClient) -> SourceReport:
    """One poll of a feed. The feed is a snapshot: an event it no longer lists that was still to come
    was deleted (RDV Service Public lists every rdv from a month ago on), so its appointment goes."""
    source = source_name(feed)
    report = SourceReport(source, utcnow().isoformat(), True)
    try:
        text, version = await fetch(client, feed.url)
        calendar = parse_ics(text, ZoneInfo(feed.timezone))
    except BookingError as exc:
        report.ok, report.error = False, str(exc)
        return report
    report.rejected = calendar.skipped
    seen = set(calendar.skipped_uids)
    for event in calendar.events:
        seen.add(event.uid)
        report.count(apply(store, source, event_news(store, feed, event, version))[0])
    for _ in mark_missing(
        store, source, seen, version, lambda start: start > version, "no longer in the feed"
    ):
        report.count("cancelled")
    return report


def pollers(
    store: Store, config: BookingsConfig
) -> list[tuple[str, float, Callable[[], Awaitable[SourceReport]]]]:
    def poll(feed: IcsFeed) -> Callable[[], Awaitable[SourceReport]]:
        async def run() -> SourceReport:
            async with httpx.AsyncClient(follow_redirects=True, max_redirects=3) as client:
                return await sync_feed(store, feed, client)

        return run

    return [(source_name(feed), feed.poll_interval_s, poll(feed)) for feed in config.ics_feeds]
