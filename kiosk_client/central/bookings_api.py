"""The routes of real bookings: RDV Service Public's webhook, and the admin's configuration, status
and sync (see bookings.py; documented in openapi.yaml, tag "bookings")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from . import bookings_ics, bookings_rdv_service_public
from .app import STORE, admin
from .bookings import (
    BookingError,
    BookingsSync,
    apply,
    config_json,
    load_config,
    parse_config,
    referenced_ids,
    save_config,
)
from .errors import ApiError
from .json_body import read_json_object
from .store import Store

log = logging.getLogger(__name__)

SYNC = web.AppKey("bookings_sync", BookingsSync)
IGNORED_LISTED = 50


def make_sync(store: Store) -> BookingsSync:
    return BookingsSync(store, [bookings_rdv_service_public.pollers, bookings_ics.pollers])


async def rdv_service_public_webhook(request: web.Request) -> web.Response:
    """A webhook of RDV Service Public: signature first (401 and nothing read further), then the body
    (400 if malformed), then the rdv applied — or acknowledged and ignored when no rule maps it."""
    store = request.app[STORE]
    config = load_config(store).rdv_service_public
    if config is None or config.webhook_secret is None:
        raise ApiError(503, "bookings_not_configured", "no RDV Service Public webhook secret is configured")
    try:
        raw = await request.read()  # bounded by the app's client_max_size (413); kept for read_json_object
    except web.RequestPayloadError:
        raise ApiError(400, "invalid_body", "the request body could not be decoded") from None
    header = request.headers.get(bookings_rdv_service_public.SIGNATURE_HEADER)
    if not bookings_rdv_service_public.signature_ok(config.webhook_secret, raw, header):
        log.warning("RDV Service Public webhook refused: %s signature", "no" if header is None else "a wrong")
        raise ApiError(401, "invalid_signature", "X-Lapin-Signature is missing or does not sign this body")
    payload = await read_json_object(request)
    try:
        news = bookings_rdv_service_public.webhook_news(store, config, payload)
    except BookingError as exc:
        raise ApiError(400, "invalid_payload", str(exc)) from None
    if news is None:
        return web.json_response({"outcome": "ignored", "reason": "not an rdv"})
    outcome, appointment_id = apply(store, bookings_rdv_service_public.SOURCE, news)
    body: dict[str, Any] = {"outcome": outcome, "appointment_id": appointment_id}
    if news.reason is not None and outcome == "ignored":
        body["reason"] = news.reason
    return web.json_response(body)


async def admin_put_bookings_config(request: web.Request) -> web.Response:
    admin(request)
    data = await read_json_object(request)
    store = request.app[STORE]
    try:
        config = parse_config(data, previous=load_config(store))
    except BookingError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None
    kiosks, clerks = referenced_ids(config)
    unknown = sorted(k for k in kiosks if store.kiosk(k) is None) + sorted(
        c for c in clerks if store.clerk(c) is None
    )
    if unknown:
        raise ApiError(400, "invalid_field", f"no such kiosk or clerk: {', '.join(unknown)}")
    save_config(store, config)
    request.app[SYNC].wake()
    log.info("bookings configuration changed")
    return web.json_response(config_json(config))


async def admin_get_bookings_config(request: web.Request) -> web.Response:
    admin(request)
    return web.json_response(config_json(load_config(request.app[STORE])))


async def admin_bookings(request: web.Request) -> web.Response:
    """How many bookings of each source are in each state, the latest ignored ones (why), and what
    each source's last poll did."""
    admin(request)
    rows = request.app[STORE].bookings()
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        by_state = counts.setdefault(row["source"], {})
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
    ignored = sorted(
        (r for r in rows if r["state"] == "ignored"), key=lambda r: r["updated_at"], reverse=True
    )
    return web.json_response(
        {
            "counts": counts,
            "ignored": [
                {k: r[k] for k in ("source", "external_id", "reason", "updated_at")}
                for r in ignored[:IGNORED_LISTED]
            ],
            "sources": [r.to_json() for r in request.app[SYNC].reports.values()],
        }
    )


async def admin_bookings_sync(request: web.Request) -> web.Response:
    """Polls every configured source now (the RDV Service Public API, each ICS feed)."""
    admin(request)
    reports = await request.app[SYNC].sync_now()
    return web.json_response({"sources": [r.to_json() for r in reports]})


async def _run_sync(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[SYNC].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def add_booking_routes(app: web.Application, v1: str) -> None:
    app[SYNC] = make_sync(app[STORE])
    app.cleanup_ctx.append(_run_sync)
    app.router.add_post(f"{v1}/bookings/rdv-service-public/webhook", rdv_service_public_webhook)
    app.router.add_get(f"{v1}/admin/bookings", admin_bookings)
    app.router.add_post(f"{v1}/admin/bookings/sync", admin_bookings_sync)
    app.router.add_get(f"{v1}/admin/bookings/config", admin_get_bookings_config)
    app.router.add_put(f"{v1}/admin/bookings/config", admin_put_bookings_config)
