"""RDV Service Public (betagouv/rdv-service-public) as a source of bookings.

What it sends, as read in its code:
- Webhooks (`WebhookJob`, `WebhookDeliverable`): a POST of `{"data": <the RdvBlueprint>, "meta":
  {"model": "Rdv", "event": "created"|"updated"|"destroyed", "webhook_reason", "timestamp"}}`, with
  `X-Lapin-Signature` = hex HMAC-SHA256 of the raw body under the endpoint's shared secret. An endpoint
  subscribed to other models (absences, plages d'ouverture, users) gets theirs too: acknowledged and
  left alone here. The rdv carries no `updated_at`: the order of news is `meta.timestamp`, the time
  the payload was made (to the second), and on a tie a cancellation wins.
- Times as Ruby prints them, "2026-12-14 10:00:00 +0100" (ISO 8601 is accepted too).
- Status: unknown, seen, noshow (the rdv holds), excused, revoked (cancelled: `Rdv::CANCELLED_STATUSES`).
- API v1 (`Api::V1::RdvsController#index`): GET /api/v1/organisations/{id}/rdvs?starts_after=…&
  starts_before=…&page=N, 100 a page, `{"rdvs": [...], "meta": {"current_page", "next_page",
  "prev_page", "total_pages", "total_count"}}`; authenticated by OAuth (`Authorization: Bearer`) or,
  on the historic instance, the agent token's headers `access-token`, `client`, `uid`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..core import bounded_json
from .bookings import (
    BookingError,
    BookingNews,
    BookingsConfig,
    RdvApi,
    RdvServicePublicConfig,
    SourceReport,
    apply,
    check_span,
    mark_missing,
    service_for,
)
from .store import BookedAppointment, Store, utcnow

SOURCE = "rdv-service-public"
SIGNATURE_HEADER = "X-Lapin-Signature"
EVENTS = ("created", "updated", "destroyed")
CANCELLED_STATUSES = ("excused", "revoked")
KNOWN_STATUSES = ("unknown", "seen", "noshow", *CANCELLED_STATUSES)
MAX_PAGES = 100  # 10,000 rdvs in the window: beyond, the listing is not trusted to be complete
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, given: str | None) -> bool:
    """Whether `given` (the X-Lapin-Signature header) signs these exact bytes, compared in constant time."""
    if given is None:
        return False
    given = given.strip().lower()
    if len(given) != 64 or not all(c in "0123456789abcdef" for c in given):
        return False
    return hmac.compare_digest(signature(secret, body), given)


def rdv_time(value: Any, what: str) -> datetime:
    """A time as RDV Service Public writes it ("2026-12-14 10:00:00 +0100", or ISO 8601), with its zone."""
    if isinstance(value, str) and len(value) <= 40:
        for parse in (lambda v: datetime.strptime(v, "%Y-%m-%d %H:%M:%S %z"), datetime.fromisoformat):
            try:
                moment = parse(value)
            except ValueError:
                continue
            if moment.tzinfo is not None:
                return moment
    raise BookingError(f"{what}: expected a date-time with its time zone")


def rdv_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        return value
    raise BookingError("data.id: expected the rdv's number")


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _agent_names(agent: dict[str, Any]) -> set[str]:
    """How a rule may name an agent: full name, last name alone (intervenants such as "Guichet 1"
    have no first name), e-mail; compared without case."""
    first, last, email = (
        _text(agent.get("first_name")),
        _text(agent.get("last_name")),
        _text(agent.get("email")),
    )
    names = {" ".join(n for n in (first, last) if n), last or "", email or ""}
    return {n.casefold() for n in names if n}


def _matches(rule: int | str, item: dict[str, Any] | None, names: set[str]) -> bool:
    if item is None:
        return False
    if isinstance(rule, int):
        return item.get("id") == rule or (isinstance(item.get("id"), str) and item["id"] == str(rule))
    return rule.strip().casefold() in names


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def citizen_name(rdv: dict[str, Any]) -> str | None:
    """The first participant's name, for the clerk's list only (never sent to the kiosk)."""
    users = _objects(rdv.get("users")) or [
        p["user"] for p in _objects(rdv.get("participations")) if isinstance(p.get("user"), dict)
    ]
    if not users:
        return None
    name = " ".join(n for n in (_text(users[0].get("first_name")), _text(users[0].get("last_name"))) if n)
    return name[:200] or None


def rdv_news(
    store: Store, config: RdvServicePublicConfig, rdv: dict[str, Any], version: datetime
) -> BookingNews:
    """One rdv's state, mapped to a kiosk and a clerk by the configuration's rules; BookingError if it
    is malformed. An rdv no rule maps is news too ("ignored", with the reason): counted, not an error."""
    external_id = rdv_id(rdv.get("id"))
    status = rdv.get("status")
    if status not in KNOWN_STATUSES:
        raise BookingError(f"data.status: expected one of {', '.join(KNOWN_STATUSES)}")
    start = rdv_time(rdv.get("starts_at"), "data.starts_at")
    if rdv.get("ends_at") is not None:
        end = rdv_time(rdv["ends_at"], "data.ends_at")
    else:
        minutes = rdv.get("duration_in_min")
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise BookingError("data.ends_at or data.duration_in_min: expected the rdv's end")
        end = start + timedelta(minutes=minutes)
    check_span(start, end)
    if status in CANCELLED_STATUSES:
        return BookingNews(external_id, 0, version, "cancelled", f"status {status}")
    lieu = rdv.get("lieu") if isinstance(rdv.get("lieu"), dict) else None
    lieu_names = {n.casefold()} if lieu is not None and (n := _text(lieu.get("name"))) else set()
    agents = _objects(rdv.get("agents"))
    kiosk_id = next(
        (
            rule.kiosk_id
            for rule in config.kiosks
            if (rule.lieu is not None and _matches(rule.lieu, lieu, lieu_names))
            or (rule.agent is not None and any(_matches(rule.agent, a, _agent_names(a)) for a in agents))
        ),
        None,
    )
    if kiosk_id is None:
        return BookingNews(external_id, 0, version, "ignored", "no kiosk for its lieu or agents")
    clerk = next(
        (rule for rule in config.clerks if any(_matches(rule.agent, a, _agent_names(a)) for a in agents)),
        None,
    )
    service = service_for(store, clerk.clerk_id, clerk.service) if clerk is not None else None
    if clerk is None or service is None:
        return BookingNews(external_id, 0, version, "ignored", "no clerk for its agents")
    booked = BookedAppointment(kiosk_id, clerk.clerk_id, service[:200], start, end, citizen_name(rdv))
    return BookingNews(external_id, 0, version, "active", booked=booked)


# --------------------------------------------------------------------------- the webhook


def webhook_news(store: Store, config: RdvServicePublicConfig, payload: dict[str, Any]) -> BookingNews | None:
    """The news a verified webhook body brings; None for another model than Rdv (acknowledged, not
    used); BookingError if it is malformed."""
    meta = payload.get("meta")
    data = payload.get("data")
    if not isinstance(meta, dict) or not isinstance(data, dict):
        raise BookingError("expected {data, meta} as RDV Service Public sends them")
    if meta.get("model") != "Rdv":
        if not isinstance(meta.get("model"), str):
            raise BookingError("meta.model: expected the model's name")
        return None
    event = meta.get("event")
    if event not in EVENTS:
        raise BookingError(f"meta.event: expected one of {', '.join(EVENTS)}")
    version = rdv_time(meta.get("timestamp"), "meta.timestamp")
    if event == "destroyed":
        return BookingNews(rdv_id(data.get("id")), 0, version, "removed", "deleted in RDV Service Public")
    return rdv_news(store, config, data, version)


# --------------------------------------------------------------------------- the reconciliation poll


@dataclass(frozen=True)
class Listing:
    rdvs: list[Any]
    version: datetime  # RDV Service Public's clock (its Date header) when it answered the first page
    since: datetime
    until: datetime


def _refusal(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return f"RDV Service Public refused the agent's credentials ({response.status_code})"
    return f"RDV Service Public answered {response.status_code}"


async def list_rdvs(client: httpx.AsyncClient, api: RdvApi, now: datetime) -> Listing:
    """Every rdv of the organisation starting in the window, all pages; BookingError if any page fails
    (a partial listing would make the rdvs it lacks look deleted)."""
    since = (now - timedelta(days=api.days_back)).replace(microsecond=0)
    until = (now + timedelta(days=api.days_ahead)).replace(microsecond=0)
    url = f"{api.base_url}/api/v1/organisations/{api.organisation_id}/rdvs"
    rdvs: list[Any] = []
    version: datetime | None = None
    page: Any = 1
    for _ in range(MAX_PAGES):
        params = {"starts_after": since.isoformat(), "starts_before": until.isoformat(), "page": str(page)}
        try:
            response = await client.get(url, params=params, headers=api.headers, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise BookingError(f"RDV Service Public could not be reached: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise BookingError(_refusal(response))
        if version is None:
            try:
                version = parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
            except (KeyError, TypeError, ValueError):
                version = now
        try:
            document = bounded_json.loads(response.content)
        except bounded_json.UnsafeJson as exc:
            raise BookingError(f"RDV Service Public's page {page} is not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("rdvs"), list):
            raise BookingError(f"RDV Service Public's page {page} has no rdvs list")
        rdvs.extend(document["rdvs"])
        meta = document.get("meta")
        following = meta.get("next_page") if isinstance(meta, dict) else None
        if following is None:
            return Listing(rdvs, version, since, until)
        if isinstance(following, bool) or not isinstance(following, int) or following <= page:
            raise BookingError(f"RDV Service Public's page {page} has a bad meta.next_page")
        page = following
    raise BookingError(f"more than {MAX_PAGES} pages of rdvs: narrow the window (days_back, days_ahead)")


async def reconcile(store: Store, config: RdvServicePublicConfig, client: httpx.AsyncClient) -> SourceReport:
    """One poll: the store brought in line with the listing (rdvs created, moved or cancelled while a
    webhook was lost; those deleted are no longer listed)."""
    assert config.api is not None
    now = utcnow()
    report = SourceReport(SOURCE, now.isoformat(), True)
    try:
        listing = await list_rdvs(client, config.api, now)
    except BookingError as exc:
        report.ok, report.error = False, str(exc)
        return report
    seen: set[str] = set()
    for rdv in listing.rdvs:
        try:
            if not isinstance(rdv, dict):
                raise BookingError("not an object")
            seen.add(rdv_id(rdv.get("id")))
            news = rdv_news(store, config, rdv, listing.version)
        except BookingError:
            report.rejected += 1
            continue
        report.count(apply(store, SOURCE, news)[0])
    for _ in mark_missing(
        store, SOURCE, seen, listing.version, lambda start: listing.since <= start < listing.until,
        "no longer listed by RDV Service Public",
    ):  # fmt: skip
        report.count("cancelled")
    return report


def pollers(
    store: Store, config: BookingsConfig
) -> list[tuple[str, float, Callable[[], Awaitable[SourceReport]]]]:
    rdv = config.rdv_service_public
    if rdv is None or rdv.api is None:
        return []

    async def poll() -> SourceReport:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            return await reconcile(store, rdv, client)

    return [(SOURCE, rdv.api.poll_interval_s, poll)]
