"""Appointments booked in a booking tool, mirrored into the reference central's store.

Two kinds of source feed it: RDV Service Public (its signed webhooks and a reconciliation poll of its
API, bookings_rdv_service_public.py) and iCalendar feeds (bookings_ics.py). Each turns what it reads
into `BookingNews` — one booking's latest state, already mapped to a kiosk and a clerk — and `apply`
writes it through `Store.apply_booking`, which keeps per booking the version of the news last applied:
older news changes nothing, a deleted booking never comes back.

The configuration (which RDV "lieu" or agent is which kiosk, which agent is which clerk, the webhook
secret, the API credentials, the ICS feeds) is the admin's (`PUT /api/v1/admin/bookings/config`),
kept in the settings table under "bookings" — never in the kiosk config, which every kiosk is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .store import BookedAppointment, Store, utcnow

log = logging.getLogger(__name__)

SETTING = "bookings"
MAX_RULES = 500
MAX_FEEDS = 50
MIN_POLL_S = 10.0
MAX_APPOINTMENT = timedelta(hours=12)  # longer is not a kiosk appointment: refused as malformed


class BookingError(ValueError):
    """A source's payload or the admin's configuration is unusable; the message says what, in English."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class KioskRule:
    """Bookings at this RDV lieu, or with this agent (a post such as "Guichet 1"), go to this kiosk.
    `lieu` and `agent` are an id (int) or a name (str, compared without case)."""

    kiosk_id: str
    lieu: int | str | None = None
    agent: int | str | None = None


@dataclass(frozen=True)
class ClerkRule:
    """Bookings with this agent (id, full name or e-mail) are this clerk's, for `service` (default:
    the clerk's own)."""

    clerk_id: str
    agent: int | str
    service: str | None = None


@dataclass(frozen=True)
class RdvApi:
    """RDV Service Public's API v1, polled to catch what the webhooks missed."""

    base_url: str
    organisation_id: str
    # Sent with every request: `Authorization: Bearer …` (OAuth) or the agent token's three headers
    # `access-token`, `client`, `uid` (see README "Real bookings").
    headers: dict[str, str]
    poll_interval_s: float = 300.0
    days_back: int = 1
    days_ahead: int = 14


@dataclass(frozen=True)
class RdvServicePublicConfig:
    webhook_secret: str | None = None
    api: RdvApi | None = None
    kiosks: tuple[KioskRule, ...] = ()
    clerks: tuple[ClerkRule, ...] = ()


@dataclass(frozen=True)
class IcsFeed:
    """An iCalendar feed (e.g. an RDV Service Public agent's `/calendrier/<uid>.ics`): its events are
    `clerk_id`'s, at `kiosk_id` or at the kiosk whose `kiosks` rule's `location` begins the event's
    LOCATION."""

    id: str
    url: str
    clerk_id: str
    kiosk_id: str | None = None
    kiosks: tuple[tuple[str, str], ...] = ()  # (location prefix, kiosk id)
    service: str | None = None
    poll_interval_s: float = 300.0
    timezone: str = "Europe/Paris"  # for times given without a zone ("floating")


@dataclass(frozen=True)
class BookingsConfig:
    rdv_service_public: RdvServicePublicConfig | None = None
    ics_feeds: tuple[IcsFeed, ...] = ()


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BookingError(f"{where}: expected an object")
    return value


def _str(value: Any, where: str, max_len: int = 200, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len or not value.isprintable():
        raise BookingError(f"{where}: expected a non-empty string of at most {max_len} characters")
    return value


def _id_or_name(value: Any, where: str) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return str(_str(value, where))


def _number(value: Any, where: str, low: float, high: float, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BookingError(f"{where}: expected a number from {low:g} to {high:g}")
    return float(value)


def _url(value: Any, where: str) -> str:
    url = _str(value, where, 2048)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BookingError(f"{where}: expected an http(s) URL")
    return str(url)


def _known(
    data: dict[str, Any], keys: set[str], where: str, *, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    unknown = set(data) - keys
    if unknown:
        raise BookingError(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
    missing = [k for k in required if data.get(k) is None]
    if missing:
        raise BookingError(f"{where}: missing {', '.join(missing)}")
    return data


def _rules(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_RULES:
        raise BookingError(f"{where}: expected an array of at most {MAX_RULES} rules")
    return [_obj(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _api_headers(auth: dict[str, Any], where: str) -> dict[str, str]:
    if "bearer" in auth:
        _known(auth, {"bearer"}, where)
        return {"Authorization": f"Bearer {_str(auth['bearer'], f'{where}.bearer', 500)}"}
    _known(auth, {"access_token", "client", "uid"}, where, required=("access_token", "client", "uid"))
    return {
        "access-token": _str(auth["access_token"], f"{where}.access_token", 500),
        "client": _str(auth["client"], f"{where}.client", 500),
        "uid": _str(auth["uid"], f"{where}.uid", 500),
    }


def parse_config(data: dict[str, Any], previous: BookingsConfig | None = None) -> BookingsConfig:
    """The configuration from its JSON (see openapi.yaml, BookingsConfig), or BookingError. Secrets
    left out (`webhook_secret`, `api.auth`) keep their previous value; null removes them."""
    _known(data, {"rdv_service_public", "ics_feeds"}, "config")
    old_rdv = previous.rdv_service_public if previous is not None else None
    rdv = None
    if data.get("rdv_service_public") is not None:
        r = _known(
            _obj(data["rdv_service_public"], "rdv_service_public"),
            {"webhook_secret", "api", "kiosks", "clerks"},
            "rdv_service_public",
        )
        secret = old_rdv.webhook_secret if old_rdv is not None else None
        if "webhook_secret" in r:
            secret = _str(r["webhook_secret"], "rdv_service_public.webhook_secret", 500, optional=True)
        api = None
        if r.get("api") is not None:
            where = "rdv_service_public.api"
            a = _known(
                _obj(r["api"], where),
                {"base_url", "organisation_id", "auth", "poll_interval_seconds", "days_back", "days_ahead"},
                where,
                required=("base_url", "organisation_id"),
            )
            organisation = a["organisation_id"]
            if isinstance(organisation, int) and not isinstance(organisation, bool) and organisation > 0:
                organisation = str(organisation)
            if not (isinstance(organisation, str) and organisation.isascii() and organisation.isdigit()):
                raise BookingError(
                    f"{where}.organisation_id: expected RDV Service Public's organisation number"
                )
            if a.get("auth") is not None:
                headers = _api_headers(_obj(a["auth"], f"{where}.auth"), f"{where}.auth")
            elif old_rdv is not None and old_rdv.api is not None:
                headers = old_rdv.api.headers
            else:
                raise BookingError(f"{where}.auth: the agent's credentials are needed")
            api = RdvApi(
                base_url=_url(a["base_url"], f"{where}.base_url").rstrip("/"),
                organisation_id=organisation[:20],
                headers=headers,
                poll_interval_s=_number(a.get("poll_interval_seconds"), f"{where}.poll_interval_seconds", MIN_POLL_S, 86400, 300),
                days_back=int(_number(a.get("days_back"), f"{where}.days_back", 0, 31, 1)),
                days_ahead=int(_number(a.get("days_ahead"), f"{where}.days_ahead", 1, 366, 14)),
            )  # fmt: skip
        kiosks = []
        for i, k in enumerate(_rules(r.get("kiosks"), "rdv_service_public.kiosks")):
            where = f"rdv_service_public.kiosks[{i}]"
            _known(k, {"lieu", "agent", "kiosk_id"}, where, required=("kiosk_id",))
            if (k.get("lieu") is None) == (k.get("agent") is None):
                raise BookingError(f"{where}: expected either lieu or agent")
            kiosks.append(
                KioskRule(
                    _str(k["kiosk_id"], f"{where}.kiosk_id", 64),
                    lieu=None if k.get("lieu") is None else _id_or_name(k["lieu"], f"{where}.lieu"),
                    agent=None if k.get("agent") is None else _id_or_name(k["agent"], f"{where}.agent"),
                )
            )
        clerks = []
        for i, c in enumerate(_rules(r.get("clerks"), "rdv_service_public.clerks")):
            where = f"rdv_service_public.clerks[{i}]"
            _known(c, {"agent", "clerk_id", "service"}, where, required=("agent", "clerk_id"))
            clerks.append(
                ClerkRule(
                    _str(c["clerk_id"], f"{where}.clerk_id", 64),
                    _id_or_name(c["agent"], f"{where}.agent"),
                    _str(c.get("service"), f"{where}.service", optional=True),
                )
            )
        rdv = RdvServicePublicConfig(secret, api, tuple(kiosks), tuple(clerks))
    feeds: list[IcsFeed] = []
    raw_feeds = data.get("ics_feeds") or []
    if not isinstance(raw_feeds, list) or len(raw_feeds) > MAX_FEEDS:
        raise BookingError(f"ics_feeds: expected an array of at most {MAX_FEEDS} feeds")
    for i, raw in enumerate(raw_feeds):
        where = f"ics_feeds[{i}]"
        f = _known(
            _obj(raw, where),
            {"id", "url", "kiosk_id", "kiosks", "clerk_id", "service", "poll_interval_seconds", "timezone"},
            where,
            required=("id", "url", "clerk_id"),
        )
        feed_id = _str(f["id"], f"{where}.id", 64)
        if not all(c.isalnum() or c in "-_." for c in feed_id) or feed_id in {x.id for x in feeds}:
            raise BookingError(f"{where}.id: expected a unique name of letters, digits, '-', '_' or '.'")
        rules = []
        for j, k in enumerate(_rules(f.get("kiosks"), f"{where}.kiosks")):
            _known(k, {"location", "kiosk_id"}, f"{where}.kiosks[{j}]", required=("location", "kiosk_id"))
            rules.append(
                (_str(k["location"], f"{where}.kiosks[{j}].location"), _str(k["kiosk_id"], f"{where}.kiosks[{j}].kiosk_id", 64))
            )  # fmt: skip
        kiosk_id = _str(f.get("kiosk_id"), f"{where}.kiosk_id", 64, optional=True)
        if kiosk_id is None and not rules:
            raise BookingError(f"{where}: expected kiosk_id or kiosks")
        zone = _str(f.get("timezone") or "Europe/Paris", f"{where}.timezone", 64)
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BookingError(f"{where}.timezone: unknown time zone {zone!r}") from None
        feeds.append(
            IcsFeed(
                feed_id, _url(f["url"], f"{where}.url"), _str(f["clerk_id"], f"{where}.clerk_id", 64),
                kiosk_id, tuple(rules), _str(f.get("service"), f"{where}.service", optional=True),
                _number(f.get("poll_interval_seconds"), f"{where}.poll_interval_seconds", MIN_POLL_S, 86400, 300), zone,
            )
        )  # fmt: skip
    return BookingsConfig(rdv, tuple(feeds))


def referenced_ids(config: BookingsConfig) -> tuple[set[str], set[str]]:
    """The kiosk and clerk ids the configuration names (each must exist in the store)."""
    kiosks: set[str] = set()
    clerks: set[str] = set()
    if (rdv := config.rdv_service_public) is not None:
        kiosks.update(k.kiosk_id for k in rdv.kiosks)
        clerks.update(c.clerk_id for c in rdv.clerks)
    for feed in config.ics_feeds:
        kiosks.update(k for _, k in feed.kiosks)
        if feed.kiosk_id is not None:
            kiosks.add(feed.kiosk_id)
        clerks.add(feed.clerk_id)
    return kiosks, clerks


def config_json(config: BookingsConfig) -> dict[str, Any]:
    """The configuration as the admin set it, secrets left out (only whether they are set)."""
    rdv = config.rdv_service_public
    return {
        "rdv_service_public": None
        if rdv is None
        else {
            "webhook_secret_set": rdv.webhook_secret is not None,
            "api": None
            if rdv.api is None
            else {
                "base_url": rdv.api.base_url,
                "organisation_id": rdv.api.organisation_id,
                "auth": "bearer" if "Authorization" in rdv.api.headers else "agent_token",
                "poll_interval_seconds": rdv.api.poll_interval_s,
                "days_back": rdv.api.days_back,
                "days_ahead": rdv.api.days_ahead,
            },
            "kiosks": [
                {k: v for k, v in (("lieu", r.lieu), ("agent", r.agent), ("kiosk_id", r.kiosk_id)) if v is not None}
                for r in rdv.kiosks
            ],
            "clerks": [{"agent": r.agent, "clerk_id": r.clerk_id, "service": r.service} for r in rdv.clerks],
        },
        "ics_feeds": [
            {
                "id": f.id, "url": f.url, "kiosk_id": f.kiosk_id,
                "kiosks": [{"location": loc, "kiosk_id": k} for loc, k in f.kiosks],
                "clerk_id": f.clerk_id, "service": f.service, "poll_interval_seconds": f.poll_interval_s,
                "timezone": f.timezone,
            }
            for f in config.ics_feeds
        ],
    }  # fmt: skip


def _stored(config: BookingsConfig) -> dict[str, Any]:
    """The configuration as kept in the settings table: config_json plus the secrets."""
    document = config_json(config)
    rdv = config.rdv_service_public
    if rdv is not None:
        section = document["rdv_service_public"]
        section.pop("webhook_secret_set")
        section["webhook_secret"] = rdv.webhook_secret
        if rdv.api is not None:
            h = rdv.api.headers
            section["api"]["auth"] = (
                {"bearer": h["Authorization"].removeprefix("Bearer ")}
                if "Authorization" in h
                else {"access_token": h["access-token"], "client": h["client"], "uid": h["uid"]}
            )
    return document


def load_config(store: Store) -> BookingsConfig:
    data = store.get_setting(SETTING)
    return parse_config(data) if isinstance(data, dict) else BookingsConfig()


def save_config(store: Store, config: BookingsConfig) -> None:
    store.put_setting(SETTING, _stored(config))


# --------------------------------------------------------------------------- news and its application


@dataclass(frozen=True)
class BookingNews:
    """One booking's latest state, read from a source and mapped (`booked` when state is "active")."""

    external_id: str
    sequence: int
    version: datetime
    state: str
    reason: str | None = None
    booked: BookedAppointment | None = None


def apply(store: Store, source: str, news: BookingNews) -> tuple[str, str | None]:
    outcome, appointment_id = store.apply_booking(
        source, news.external_id, news.sequence, news.version, news.state, news.reason, news.booked
    )
    # Ids only: a booking's citizen and times are nobody's business in the logs.
    if outcome == "ignored":
        log.info("%s booking %s ignored: %s", source, news.external_id, news.reason)
    elif outcome != "unchanged":
        log.info("%s booking %s: %s (appointment %s)", source, news.external_id, outcome, appointment_id)
    return outcome, appointment_id


def mark_missing(
    store: Store,
    source: str,
    seen: set[str],
    version: datetime,
    within: Callable[[datetime], bool],
    reason: str,
) -> list[str]:
    """Bookings of `source` still live whose start `within` says a complete listing covered, but which
    it did not list: deleted at the source (or moved out of reach) — their appointments are cancelled.
    They come back if later news lists them again."""
    gone = []
    for row in store.bookings(source):
        if row["state"] != "active" or row["external_id"] in seen or row["start"] is None:
            continue
        if within(datetime.fromisoformat(row["start"])):
            news = BookingNews(row["external_id"], row["sequence"], version, "missing", reason)
            if apply(store, source, news)[0] == "cancelled":
                gone.append(row["external_id"])
    return gone


def service_for(store: Store, clerk_id: str, service: str | None) -> str | None:
    """The service the appointment is for: the rule's, else the clerk's; None if no such clerk."""
    clerk = store.clerk(clerk_id)
    if clerk is None:
        return None
    return service or str(clerk["service"])


def check_span(start: datetime, end: datetime) -> None:
    if not start < end <= start + MAX_APPOINTMENT:
        raise BookingError("the appointment must end after it starts, within 12 hours")


# --------------------------------------------------------------------------- the poll loop


@dataclass
class SourceReport:
    """What the last sync of one source did, for GET /api/v1/admin/bookings."""

    source: str
    at: str
    ok: bool
    error: str | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    rejected: int = 0  # items the source listed that were malformed

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "at": self.at, "ok": self.ok, "error": self.error,
            "outcomes": dict(sorted(self.outcomes.items())), "rejected": self.rejected,
        }  # fmt: skip


Poller = Callable[[Store, BookingsConfig], list[tuple[str, float, Callable[[], Awaitable[SourceReport]]]]]


class BookingsSync:
    """Polls every configured source when it is due, on the central's loop; `sync_now` polls them all
    at once (the admin's POST /api/v1/admin/bookings/sync, and the tests). `pollers` list, for a
    configuration, each source with its interval and the coroutine that polls it."""

    def __init__(self, store: Store, pollers: list[Poller]) -> None:
        self._store = store
        self._pollers = pollers
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._last: dict[str, float] = {}  # source -> monotonic time of its last poll
        self.reports: dict[str, SourceReport] = {}

    def _sources(self) -> list[tuple[str, float, Callable[[], Awaitable[SourceReport]]]]:
        config = load_config(self._store)
        return [source for poller in self._pollers for source in poller(self._store, config)]

    def wake(self) -> None:
        """The configuration changed: look at the sources again now."""
        self._wake.set()

    async def _poll(self, name: str, run: Callable[[], Awaitable[SourceReport]]) -> SourceReport:
        self._last[name] = time.monotonic()
        try:
            report = await run()
        except Exception:  # a bug: logged, reported, and the next sources still run
            log.exception("bookings: polling %s failed", name)
            report = SourceReport(
                name, utcnow().isoformat(), False, "the poll failed (see the central's log)"
            )
        self.reports[name] = report
        return report

    async def sync_now(self) -> list[SourceReport]:
        async with self._lock:
            return [await self._poll(name, run) for name, _, run in self._sources()]

    async def run(self) -> None:
        while True:
            self._wake.clear()
            async with self._lock:
                try:
                    sources = self._sources()
                except Exception:  # a configuration edited by hand in the database: said, and waited out
                    log.exception("bookings: the configuration cannot be read; fix it with the admin API")
                    sources = []
                now = time.monotonic()
                for name, interval, run in sources:
                    if now - self._last.get(name, -interval) >= interval:
                        await self._poll(name, run)
            now = time.monotonic()
            waits = [self._last.get(n, now) + interval - now for n, interval, _ in sources]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(1.0, min(waits)) if waits else None)
