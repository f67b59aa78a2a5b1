"""The Central API v1 over aiohttp (see openapi.yaml), plus the clerk console's static files."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import segno
from aiohttp import web

from ..core.enrolment import enrolment_url
from ..core.staff_pin import PIN_DIGITS, hash_pin, valid_pin
from .call_watch import CallWatches
from .commands import delivered_json, stamp
from .errors import ApiError, error_body
from .evaluation import checked_clerk_rating, checked_evaluation_url, usage_response
from .fleet import fleet_view
from .guard import CentralOptions, Guard, cors_middleware, same_secret, security_headers, web_origin
from .json_body import read_json_object
from .session_reports import checked_report, report_json
from .store import CallRow, DatabaseUnavailable, Store, token_hash, utcnow
from .turn import credential_expiry, turn_ice_server

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PARIS = ZoneInfo("Europe/Paris")  # the visitor centres' clock: "today" ends at their midnight
DEMO_FORM = Path(__file__).parent / "demo_form"
SCHEMAS = Path(__file__).parent / "schemas"  # the data channels' messages (JSON Schema)
MAX_BODY = 512 * 1024
MAX_WAIT_S = 30.0
WALK_IN_SERVICES_REFRESH_S = 5  # how often the staff panel asks again while its walk-in page is open
FINISHED = "this appointment has finished (its call was hung up); it cannot be joined again"
SECONDS_KEYS = ("poll_interval_seconds", "join_before_seconds", "no_show_after_seconds")
DEFAULT_CONFIG: dict[str, Any] = {
    "ice_servers": [],
    "poll_interval_seconds": 15,
    "join_before_seconds": 90,
    "no_show_after_seconds": 900,
    # Set through "staff_pin" only: the central keeps and serves the PIN's hash, never the PIN.
    "staff_pin_hash": None,
    # « Je donne mon avis » or the council's own survey, shown to citizens once they rated a session.
    "evaluation_url": None,
}
WALK_IN_ERRORS = {
    "unknown": (404, "walk_in_code_unknown", "no such walk-in code: check the digits with the clerk"),
    "expired": (410, "walk_in_code_expired", "this walk-in code has expired: ask the clerk for a new one"),
    "used": (410, "walk_in_code_used", "this walk-in code was already used: ask the clerk for a new one"),
}

STORE = web.AppKey("store", Store)
ADMIN_TOKEN = web.AppKey("admin_token", str)
WATCHES = web.AppKey("watches", CallWatches)
GUARD = web.AppKey("guard", Guard)
OPTIONS = web.AppKey("options", CentralOptions)
RELAY = web.AppKey("relay", asyncio.Task)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(error_body(exc.code, exc.message), status=exc.status, headers=exc.headers)
    except DatabaseUnavailable as exc:
        # PostgreSQL down or restarting: the client tries again later; the store reconnects by itself.
        log.warning("%s %s: %s", request.method, request.path, exc)
        return web.json_response(
            error_body("unavailable", "the central's database is unavailable: try again shortly"),
            status=503,
            headers={"Retry-After": "5"},
        )
    except web.HTTPRequestEntityTooLarge:
        return web.json_response(error_body("too_large", "request body too large"), status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return web.json_response(error_body(code, exc.reason), status=exc.status)
    except Exception:
        # A bug, not the client's fault: logged with its traceback, answered in the API's error format.
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response(error_body("internal_error", "the central failed"), status=500)


# --------------------------------------------------------------------------- input helpers


def text(data: dict[str, Any], key: str, max_len: int = 500, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ApiError(
            400, "invalid_field", f"{key}: expected a non-empty string of at most {max_len} characters"
        )
    return value


def moment(data: dict[str, Any], key: str) -> datetime:
    raw = text(data, key, 64)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid_field", f"{key}: expected an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise ApiError(400, "invalid_field", f"{key}: the date-time needs a time zone")
    return value


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    token = header[7:]
    # Tokens are URL-safe ASCII; anything else (aiohttp hands over undecodable bytes as surrogates,
    # which hashing cannot encode) is refused here rather than failing deeper down.
    if not header.startswith("Bearer ") or len(header) > 600 or not (token.isascii() and token.isprintable()):
        raise ApiError(401, "unauthorized", "missing or malformed bearer token")
    return token


def device(request: web.Request) -> Any:
    kiosk = request.app[STORE].kiosk_by_token(bearer(request))
    if kiosk is None:
        raise ApiError(401, "unauthorized", "unknown device token")
    return kiosk


def limited_bearer(request: web.Request) -> str:
    """The bearer token of a call a clerk or admin token may make: 429 once this client address
    failed too often, and a missing or malformed header counts as a failure. (Device-token calls are
    not limited: a kiosk with a revoked token must keep hearing 401, "enrol again".)"""
    guard = request.app[GUARD]
    guard.token_check_allowed(request)
    try:
        return bearer(request)
    except ApiError:
        guard.token_failed(request)
        raise


def clerk(request: web.Request) -> Any:
    row = request.app[STORE].clerk_by_token(limited_bearer(request))
    if row is None:
        request.app[GUARD].token_failed(request)
        raise ApiError(401, "unauthorized", "unknown clerk token")
    return row


def admin(request: web.Request) -> None:
    if not same_secret(limited_bearer(request), request.app[ADMIN_TOKEN]):
        request.app[GUARD].token_failed(request)
        raise ApiError(401, "unauthorized", "admin token required")


def appointment_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "service": row["service"],
        "clerk_name": row["clerk_name"],
        "start": row["start"],
        "end": row["end"],
        "allowed_origins": json.loads(row["allowed_origins"]),
        "start_url": row["start_url"],
    }


def window() -> tuple[datetime, datetime]:
    now = utcnow()
    return now - timedelta(hours=1), now + timedelta(days=2)


# --------------------------------------------------------------------------- signalling helpers


def relay_call_change(app: web.Application, announced: str) -> None:
    """Another central process changed a call (PostgreSQL NOTIFY): this process's long polls on it get
    it. A notification lost (the listening connection dropped) wakes every waiter when it is back ("");
    and a long poll ends at its own timeout anyway, when it reads the call again."""
    store = app[STORE]
    try:
        appointment_id, call = store.call_change(announced)
        app[WATCHES].changed_elsewhere(appointment_id, store.call, call)
    except DatabaseUnavailable as exc:
        log.warning("could not read a call another central process changed: %s", exc)  # read at timeout
    except Exception:
        # A bug: logged; the waiters still read the call at their timeout.
        log.exception("relaying a call change from another central process failed")


async def start_relay(app: web.Application) -> None:
    if app[STORE].shared:
        app[RELAY] = asyncio.ensure_future(app[STORE].listen_for_calls(partial(relay_call_change, app)))


async def stop_relay(app: web.Application) -> None:
    task = app.get(RELAY)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def appointment_for(request: web.Request, *, as_kiosk: Any = None, as_clerk: Any = None) -> Any:
    row = request.app[STORE].appointment_with_parties(request.match_info["appointment_id"])
    if row is None or (as_kiosk is not None and row["kiosk_id"] != as_kiosk["id"]):
        raise ApiError(404, "not_found", "no such appointment for this kiosk")
    if as_clerk is not None and row["clerk_id"] != as_clerk["id"]:
        raise ApiError(404, "not_found", "no such appointment for this clerk")
    return row


def party_appointment(request: web.Request, token: str) -> tuple[str, Any] | None:
    """The appointment of the path and which of its parties `token` is ("kiosk" or "clerk"), read with
    one statement; None when the token is neither (unknown, or another kiosk's or clerk's: the caller
    then tells those apart, rarely)."""
    row = request.app[STORE].appointment_with_parties(request.match_info["appointment_id"])
    if row is None:
        return None
    hashed = token_hash(token)
    for party in ("kiosk", "clerk"):
        if row[f"{party}_token_hash"] is not None and hmac.compare_digest(row[f"{party}_token_hash"], hashed):
            return party, row
    return None


def kiosk_appointment(request: web.Request) -> Any:
    """The path's appointment, for its own kiosk (the device token's)."""
    found = party_appointment(request, bearer(request))
    if found is not None and found[0] == "kiosk":
        return found[1]
    return appointment_for(request, as_kiosk=device(request))  # the right error: 401 or 404


def clerk_appointment(request: web.Request) -> Any:
    """The path's appointment, for its own clerk."""
    found = party_appointment(request, limited_bearer(request))
    if found is not None and found[0] == "clerk":
        return found[1]
    return appointment_for(request, as_clerk=clerk(request))  # the right error: 401 or 404


def either_party(request: web.Request) -> tuple[str, Any]:
    token = limited_bearer(request)
    if (found := party_appointment(request, token)) is not None:
        return found
    store = request.app[STORE]
    if (kiosk := store.kiosk_by_token(token)) is not None:
        return "kiosk", appointment_for(request, as_kiosk=kiosk)
    if (clerk_row := store.clerk_by_token(token)) is not None:
        return "clerk", appointment_for(request, as_clerk=clerk_row)
    request.app[GUARD].token_failed(request)
    raise ApiError(401, "unauthorized", "unknown token")


def session_description(data: dict[str, Any], kind: str) -> str:
    if data.get("type") != kind:
        raise ApiError(400, "invalid_field", f"type: expected {kind!r}")
    sdp = text(data, "sdp", 200_000)
    if not sdp.startswith("v=0"):
        raise ApiError(400, "invalid_field", "sdp: not a session description")
    return str(sdp)


# --------------------------------------------------------------------------- kiosk endpoints


async def enroll(request: web.Request) -> web.Response:
    guard = request.app[GUARD]
    guard.enrolment_attempt(request)
    data = await read_json_object(request)
    code = text(data, "code", 64)
    result = request.app[STORE].redeem_enrollment_code(code)
    if result is None:
        guard.enrolment_failed()
        raise ApiError(401, "invalid_code", "unknown, used or expired enrolment code")
    kiosk_id, token = result
    log.info("kiosk %s enrolled", kiosk_id)
    return web.json_response({"kiosk_id": kiosk_id, "device_token": token}, status=201)


async def schedule(request: web.Request) -> web.Response:
    since, until = window()
    found = request.app[STORE].kiosk_schedule(bearer(request), since, until)
    if found is None:
        raise ApiError(401, "unauthorized", "unknown device token")
    kiosk, appointments = found
    document = {
        "kiosk": {
            "id": kiosk["kiosk_id"],
            "name": kiosk["kiosk_name"],
            "site_name": kiosk["kiosk_site_name"],
        },
        "appointments": [appointment_json(r) for r in appointments],
    }
    payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(
        body=payload, content_type="application/json", headers={"ETag": etag, "Cache-Control": "no-cache"}
    )


def served_config(store: Store) -> dict[str, Any]:
    """The kiosk config as served: the defaults, overridden by what the admin set."""
    return {**DEFAULT_CONFIG, **(store.get_setting("kiosk_config") or {})}


def ice_servers_for(request: web.Request, who: str, appointments: list[Any]) -> list[dict[str, Any]]:
    """The ICE servers set in the kiosk config, then the TURN server with a credential made now for
    `who`, valid through its appointment under way (see turn.py). Each call gets fresh ones: the
    kiosk fetches its config and the console this list right before they connect."""
    servers = list(served_config(request.app[STORE])["ice_servers"])
    turn = request.app[OPTIONS].turn
    if turn is not None:
        now = utcnow()
        spans = [(datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])) for r in appointments]
        servers.append(turn_ice_server(turn, who, credential_expiry(turn, now, spans)))
    return servers


async def kiosk_config(request: web.Request) -> web.Response:
    from .releases import target_sha256  # they import this module
    from .software_targets import target_for, targets

    kiosk = device(request)
    since, until = window()
    appointments = request.app[STORE].appointments_for_kiosk(kiosk["id"], since, until)
    target = target_for(kiosk["id"], targets(request.app[STORE]))[0]
    return web.json_response(
        {
            **served_config(request.app[STORE]),
            "ice_servers": ice_servers_for(request, kiosk["id"], appointments),
            # Staged updates: the version this kiosk should run (its pin, its canary group's, the
            # fleet's), or null; and the SHA-256 of that release's wheel, null until it was uploaded
            # (the kiosk installs only a release whose hash it was told here).
            "software_target": target,
            "software_target_sha256": target_sha256(request.app[STORE], target),
        },
        headers={"Cache-Control": "no-store"},  # it carries a credential
    )


async def heartbeat(request: web.Request) -> web.Response:
    token = bearer(request)
    try:
        data = await read_json_object(request)
        devices = data.get("devices")
        if devices is None:
            devices = {}
        if not isinstance(devices, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in devices.items()
        ):
            raise ApiError(400, "invalid_field", "devices: expected an object of strings")
        preflight = data.get("preflight")
        if preflight is not None and (not isinstance(preflight, dict) or len(json.dumps(preflight)) > 4096):
            raise ApiError(400, "invalid_field", "preflight: expected an object of at most 4 KB")
        fields = (
            text(data, "state", 40),
            text(data, "appointment_id", 128, optional=True),
            devices,
            text(data, "software_version", 40, optional=True) or "",
            preflight,
            checked_update(data.get("update")),
        )
    except ApiError:
        device(request)  # an unknown token hears 401 first, whatever its body
        raise
    # Checked, recorded and its commands counted in one statement: every kiosk sends one every poll.
    now = utcnow()
    seen = request.app[STORE].heartbeat_by_token(token, stamp(now), *fields)
    if seen is None:
        raise ApiError(401, "unauthorized", "unknown device token")
    kiosk_id, pending = seen
    # IT staff's commands ride on the answer; none: 204 as always (what older kiosks expect).
    commands = request.app[STORE].deliver_commands(kiosk_id, stamp(now)) if pending else []
    if not commands:
        return web.Response(status=204)
    return web.json_response(
        {"commands": [delivered_json(c, now) for c in commands]}, headers={"Cache-Control": "no-store"}
    )


UPDATE_STATES = frozenset(
    {
        "downloading",
        "download_failed",
        "waiting_idle",
        "requested",
        "installing",
        "installed",
        "failed",
        "refused",
        "unconfirmed",
    }
)


def checked_update(value: Any) -> dict[str, Any] | None:
    """The kiosk's staged update as its heartbeat says it: {state, version, error?}, or null."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"state", "version", "error"}:
        raise ApiError(400, "invalid_field", "update: expected {state, version, error} or null")
    state, version, error = value.get("state"), value.get("version"), value.get("error")
    if state not in UPDATE_STATES:
        raise ApiError(
            400, "invalid_field", f"update.state: expected one of {', '.join(sorted(UPDATE_STATES))}"
        )
    if not isinstance(version, str) or not 0 < len(version) <= 40:
        raise ApiError(400, "invalid_field", "update.version: expected a version")
    if error is not None and (not isinstance(error, str) or len(error) > 300):
        raise ApiError(400, "invalid_field", "update.error: expected a string of at most 300 characters")
    return {"state": state, "version": version, "error": error}


UPLINK_PROBE_MAX = 2 * 1024 * 1024


async def uplink_probe(request: web.Request) -> web.Response:
    """The kiosk times an upload to estimate its uplink (pre-flight): read and dropped."""
    device(request)
    received = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        received += len(chunk)
        if received > UPLINK_PROBE_MAX:
            raise ApiError(413, "too_large", f"at most {UPLINK_PROBE_MAX} bytes")
    return web.Response(status=204)


async def document_expired(request: web.Request) -> web.Response:
    kiosk = device(request)
    data = await read_json_object(request)
    document_id = text(data, "document_id", 32)
    sha256 = text(data, "sha256", 64, optional=True)
    reason = text(data, "reason", 20)
    if not re.fullmatch(r"[0-9a-f]{32}", document_id):
        raise ApiError(400, "invalid_field", "document_id: expected 32 lowercase hex characters")
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ApiError(400, "invalid_field", "sha256: expected 64 lowercase hex characters")
    if reason not in ("retention", "unreadable"):
        raise ApiError(400, "invalid_field", "reason: expected retention or unreadable")
    request.app[STORE].record_expired_document(
        kiosk["id"], document_id, text(data, "appointment_id", 128, optional=True), sha256, reason
    )
    return web.Response(status=204)


async def session_report(request: web.Request) -> web.Response:
    kiosk = device(request)
    request.app[STORE].record_session_report(kiosk["id"], checked_report(await read_json_object(request)))
    return web.Response(status=204)


def walk_in_code(data: dict[str, Any]) -> str:
    """The six digits of `code`, spaces (as the staff may type "482 913") left out; else 400."""
    raw = data.get("code")
    digits = "".join(raw.split()) if isinstance(raw, str) and len(raw) <= 64 else ""
    if len(digits) != 6 or not (digits.isascii() and digits.isdigit()):
        raise ApiError(400, "invalid_field", "code: expected the 6 digits of a walk-in code, as a string")
    return digits


def walk_in_service(data: dict[str, Any]) -> str:
    service = text(data, "service", 200)
    if not service.strip() or not service.isprintable():
        raise ApiError(400, "invalid_field", "service: expected a service's name, as listed")
    return str(service)


async def kiosk_walk_in(request: web.Request) -> web.Response:
    """A walk-in session, as an appointment of this kiosk starting now, with either the clerk whose
    code the staff typed (`code`), or the available clerk of a service who has waited longest
    (`service`, one of GET /kiosk/walk-in-services). Any enrolled kiosk may use any clerk's code: it
    is for whichever kiosk the citizen sits at."""
    kiosk = device(request)
    guard = request.app[GUARD]
    guard.walk_in_allowed(kiosk["id"])
    data = await read_json_object(request)
    if ("code" in data) == ("service" in data):
        raise ApiError(400, "invalid_field", "expected either code (a clerk's walk-in code) or service")
    store = request.app[STORE]
    duration = request.app[OPTIONS].walk_in_duration
    if "code" in data:
        outcome, appointment_id = store.redeem_walk_in_code(walk_in_code(data), kiosk["id"], duration)
        if appointment_id is None:
            guard.walk_in_failed(kiosk["id"])
            status, error, message = WALK_IN_ERRORS[outcome]
            raise ApiError(status, error, message)
    else:
        service = walk_in_service(data)
        outcome, appointment_id = store.take_walk_in_clerk(service, kiosk["id"], duration)
        if outcome == "unknown":
            guard.walk_in_failed(kiosk["id"])  # as a wrong code: nothing to guess, but nothing to try either
            raise ApiError(404, "walk_in_service_unknown", "no clerk serves this service")
        if appointment_id is None:
            # Not a wrong try: the list the staff chose from was right a moment ago.
            raise ApiError(
                409, "no_clerk_available", "no clerk of this service is available now: try another, or later"
            )
    row = store.appointment(appointment_id)
    assert row is not None  # made just now, in the same transaction as the code's use or the clerk's
    log.info("walk-in session %s: kiosk %s with clerk %s", appointment_id, kiosk["id"], row["clerk_id"])
    return web.json_response({"appointment": appointment_json(row)}, status=201)


async def kiosk_walk_in_services(request: web.Request) -> web.Response:
    """The services with a clerk available for walk-ins now, and how many (never who)."""
    device(request)
    return web.json_response(
        {
            "services": [
                {"service": service, "clerks_available": count}
                for service, count in request.app[STORE].walk_in_services()
            ],
            "refresh_seconds": WALK_IN_SERVICES_REFRESH_S,
        },
        headers={"Cache-Control": "no-store"},
    )


async def admin_session_reports(request: web.Request) -> web.Response:
    admin(request)
    return web.json_response({"reports": [report_json(r) for r in request.app[STORE].session_reports()]})


async def admin_expired_documents(request: web.Request) -> web.Response:
    admin(request)
    return web.json_response(
        {
            "documents": [
                {
                    k: r[k]
                    for k in ("kiosk_id", "document_id", "appointment_id", "sha256", "reason", "reported_at")
                }
                for r in request.app[STORE].expired_documents()
            ]
        }
    )


async def post_offer(request: web.Request) -> web.Response:
    row = kiosk_appointment(request)
    sdp = session_description(await read_json_object(request), "offer")

    def not_finished(current: CallRow) -> None:
        if current.ended:
            # A hang-up (by either side, or the kiosk giving up) ends the appointment for good: a kiosk
            # restarted later must not open it again, or the clerk would be called into a finished one.
            raise ApiError(409, "appointment_finished", FINISHED)

    store = request.app[STORE]
    call = store.post_offer(row["id"], sdp, not_finished, known=store.call_of(row))
    request.app[WATCHES].publish(call)
    return web.json_response({"call_id": call.call_id, "version": call.version}, status=201)


async def post_answer(request: web.Request) -> web.Response:
    row = clerk_appointment(request)
    data = await read_json_object(request)
    sdp = session_description(data, "answer")
    call_id = text(data, "call_id", 64)
    store = request.app[STORE]

    def answerable(current: CallRow) -> None:
        if current.ended and current.call_id == call_id:
            raise ApiError(409, "call_ended", "the call has ended")
        if current.ended:
            raise ApiError(409, "appointment_finished", FINISHED)
        if current.call_id is None or call_id != current.call_id:
            raise ApiError(409, "stale_call", "this answer is for a call that is no longer current")
        if current.answer is not None:
            raise ApiError(409, "already_answered", "the call was already answered")

    call = store.post_answer(row["id"], sdp, answerable, known=store.call_of(row))
    request.app[WATCHES].publish(call)
    # In a call, a clerk takes no walk-in: their availability ends (they turn it on again after).
    if row["clerk_walk_in_open"]:
        store.end_walk_in_availability(row["clerk_id"], "in_call")
    return web.json_response({"version": call.version})


async def hang_up(request: web.Request) -> web.Response:
    party, row = either_party(request)
    data = await read_json_object(request)
    reason = text(data, "reason", 64, optional=True) or "hung_up"
    call_id = text(data, "call_id", 64)
    store = request.app[STORE]

    def current_call(current: CallRow) -> None:
        if current.call_id is None or call_id != current.call_id:
            raise ApiError(409, "stale_call", "this hang-up is for a call that is no longer current")

    was = store.call(row["id"]).version
    call = store.hang_up(row["id"], party, reason, current_call)  # an ended call stays as it was
    if call.version != was:
        request.app[WATCHES].publish(call)
    return web.json_response({"version": call.version})


async def call_state(request: web.Request) -> web.Response:
    _, row = either_party(request)
    try:
        after = int(request.query.get("after", "0"))
        wait = min(MAX_WAIT_S, max(0.0, float(request.query.get("wait", "0"))))
    except ValueError:
        raise ApiError(400, "invalid_query", "after: integer, wait: seconds") from None
    store = request.app[STORE]
    current: CallRow = store.call_of(row)
    if current.version <= after and wait > 0:
        current = await request.app[WATCHES].wait_newer(
            row["id"], current, after, wait, partial(store.call, row["id"])
        )
    if current.version <= after:
        return web.Response(status=204)
    return web.json_response(current.to_json())


# --------------------------------------------------------------------------- clerk endpoints


async def clerk_appointments(request: web.Request) -> web.Response:
    me = clerk(request)
    store = request.app[STORE]
    since, until = window()
    items = []
    for r in store.appointments_for_clerk(me["id"], since, until):
        call = store.call(r["id"])
        items.append(
            {
                "id": r["id"],
                "service": r["service"],
                "start": r["start"],
                "end": r["end"],
                "kiosk_name": r["kiosk_name"],
                "site_name": r["site_name"],
                "citizen_name": r["citizen_name"],
                "walk_in": bool(r["walk_in"]),
                # Ended is final (offers and answers are refused afterwards): nothing left to join.
                "finished": call.ended,
                "call": {"version": call.version, "has_offer": call.offer is not None, "ended": call.ended},
            }
        )
    return web.json_response(
        {"clerk": {"id": me["id"], "display_name": me["display_name"]}, "appointments": items}
    )


async def clerk_config(request: web.Request) -> web.Response:
    me = clerk(request)
    since, until = window()
    appointments = request.app[STORE].appointments_for_clerk(me["id"], since, until)
    # The clerk's browser needs the same STUN/TURN servers to reach kiosks behind NAT.
    return web.json_response(
        {"ice_servers": ice_servers_for(request, me["id"], appointments)},
        headers={"Cache-Control": "no-store"},
    )


async def clerk_walk_in_code(request: web.Request) -> web.Response:
    """A code for a walk-in session with this clerk, to read out over the phone to the visitor
    centre's staff, who type it on the kiosk."""
    me = clerk(request)
    await read_json_object(request)  # `{}`: an object, so that fields can be added later
    options = request.app[OPTIONS]
    code, expires = request.app[STORE].create_walk_in_code(
        me["id"], options.walk_in_code_lifetime, options.walk_in_codes_per_clerk
    )
    return web.json_response(
        {
            "code": code,
            "expires_at": expires.isoformat(),
            # The console counts down from this rather than from expires_at: the clerk's clock may be off.
            "expires_in_seconds": max(0, round((expires - utcnow()).total_seconds())),
            "service": me["service"],
        },
        status=201,
        headers={"Cache-Control": "no-store"},
    )


def availability_json(request: web.Request, me: Any, row: Any) -> dict[str, Any]:
    lasts = request.app[OPTIONS].walk_in_availability_lasts
    now = utcnow()
    on = row is not None and row["ended"] is None and datetime.fromisoformat(row["expires_at"]) > now
    return {
        "available": on,
        "service": row["service"] if on else me["service"],
        "since": row["since"] if on else None,
        "expires_in_seconds": max(0, round((datetime.fromisoformat(row["expires_at"]) - now).total_seconds()))
        if on
        else 0,
        # How often the console says it is still there: three times within the availability's life.
        "keep_alive_seconds": max(1, int(lasts.total_seconds() // 3)),
        "ended": None if row is None or on else row["ended"],
        "appointment_id": row["appointment_id"] if row is not None and not on else None,
    }


async def clerk_walk_in_availability(request: web.Request) -> web.Response:
    me = clerk(request)
    row = request.app[STORE].walk_in_availability(me["id"])
    return web.json_response(availability_json(request, me, row), headers={"Cache-Control": "no-store"})


async def clerk_set_walk_in_availability(request: web.Request) -> web.Response:
    """The console's « Disponible pour l'accueil sans rendez-vous »: on or off."""
    me = clerk(request)
    available = (await read_json_object(request)).get("available")
    if not isinstance(available, bool):
        raise ApiError(400, "invalid_field", "available: expected true or false")
    outcome, row = request.app[STORE].set_walk_in_available(
        me["id"], me["service"], available, request.app[OPTIONS].walk_in_availability_lasts
    )
    if outcome == "in_call":
        raise ApiError(409, "clerk_in_call", "you are in a call: available again once it is over")
    log.info(
        "clerk %s %s for walk-ins (%s)",
        me["id"],
        "available" if available else "not available",
        me["service"],
    )
    return web.json_response(availability_json(request, me, row), headers={"Cache-Control": "no-store"})


async def clerk_keep_walk_in_availability(request: web.Request) -> web.Response:
    """The console is still open: an availability still on goes on; one that ended says why."""
    me = clerk(request)
    await read_json_object(request)  # `{}`
    row = request.app[STORE].keep_walk_in_available(me["id"], request.app[OPTIONS].walk_in_availability_lasts)
    return web.json_response(availability_json(request, me, row), headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------- admin endpoints (reference central only)


async def admin_create_kiosk(request: web.Request) -> web.Response:
    admin(request)
    data = await read_json_object(request)
    kiosk_id = request.app[STORE].create_kiosk(text(data, "name", 200), text(data, "site_name", 200))
    return web.json_response({"kiosk_id": kiosk_id}, status=201)


async def admin_list_kiosks(request: web.Request) -> web.Response:
    admin(request)
    rows = request.app[STORE].kiosks()
    return web.json_response(
        {
            "kiosks": [
                {
                    "id": r["id"],
                    "name": r["name"],
                    "site_name": r["site_name"],
                    "enrolled": r["token_hash"] is not None,
                    "last_seen": r["last_seen"],
                    "state": r["last_state"],
                    "appointment_id": r["last_appointment"],
                    "devices": json.loads(r["last_devices"]) if r["last_devices"] else {},
                    "software_version": r["software_version"],
                    "preflight": json.loads(r["last_preflight"]) if r["last_preflight"] else None,
                }
                for r in rows
            ]
        }
    )


async def admin_fleet(request: web.Request) -> web.Response:
    admin(request)
    store = request.app[STORE]
    now = utcnow()
    local = now.astimezone(PARIS)
    # Today in the visitor centres' own time zone: from now to their midnight.
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    today: dict[str, list[Any]] = {}
    finished: set[str] = set()
    for row in store.appointments_between(now, midnight.astimezone(UTC)):
        today.setdefault(row["kiosk_id"], []).append(row)
        if row["call_ended"]:
            finished.add(row["id"])
    from .software_targets import target_for, targets  # it imports this module

    plan = targets(store)
    kiosks = store.kiosks()
    wanted = {k["id"]: target_for(k["id"], plan) for k in kiosks}
    uploaded = frozenset(r["version"] for r in store.releases())
    view = fleet_view(kiosks, store.session_reports(), today, frozenset(finished), now, wanted, uploaded)
    return web.json_response(view)


async def fleet_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "fleet.html", headers={"Cache-Control": "no-cache"})


async def admin_enrollment_code(request: web.Request) -> web.Response:
    """The code, and the enrolment QR code IT staff show a kiosk's USB reader: `<central>/enrol?code=…`,
    with the central's address as kiosks reach it (`central_url`; by default this request's)."""
    admin(request)
    data = await read_json_object(request) if request.body_exists else {}
    central_url = data.get("central_url", f"{request.scheme}://{request.host}")
    parts = urlsplit(central_url) if isinstance(central_url, str) and len(central_url) <= 500 else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise ApiError(
            400, "invalid_field", "central_url: expected the http(s) address kiosks use for this central"
        )
    store = request.app[STORE]
    kiosk_id = request.match_info["kiosk_id"]
    if store.kiosk(kiosk_id) is None:
        raise ApiError(404, "not_found", "no such kiosk")
    code, expires = store.create_enrollment_code(kiosk_id, timedelta(hours=24))
    url = enrolment_url(central_url, code)
    svg = io.BytesIO()
    segno.make_qr(url, error="m").save(svg, kind="svg", scale=6, border=4, xmldecl=False, title="Enrolment")
    return web.json_response(
        {
            "code": code,
            "expires_at": expires.isoformat(),
            "enrol_url": url,
            "qr_svg": svg.getvalue().decode(),
        },
        status=201,
    )


async def admin_create_clerk(request: web.Request) -> web.Response:
    admin(request)
    data = await read_json_object(request)
    clerk_id, token = request.app[STORE].create_clerk(
        text(data, "display_name", 200), text(data, "service", 200)
    )
    return web.json_response({"clerk_id": clerk_id, "token": token}, status=201)


def origin(value: Any) -> str:
    try:
        if isinstance(value, str):
            return web_origin(value)
    except ValueError:
        pass
    raise ApiError(400, "invalid_field", f"allowed_origins: {str(value)[:100]!r} is not an http(s) origin")


async def admin_create_appointment(request: web.Request) -> web.Response:
    admin(request)
    data = await read_json_object(request)
    store = request.app[STORE]
    kiosk_id, clerk_id = text(data, "kiosk_id", 64), text(data, "clerk_id", 64)
    if store.kiosk(kiosk_id) is None or store.clerk(clerk_id) is None:
        raise ApiError(404, "not_found", "no such kiosk or clerk")
    start, end = moment(data, "start"), moment(data, "end")
    if end <= start:
        raise ApiError(400, "invalid_field", "end: must be after start")
    origins = data.get("allowed_origins")
    if origins is None:
        origins = []
    if not isinstance(origins, list):
        raise ApiError(400, "invalid_field", "allowed_origins: expected an array")
    start_url = text(data, "start_url", 2048, optional=True)
    # Shown to the clerk only (the console's "who is it for"); never sent to the kiosk, whose screen
    # a waiting room can see.
    citizen_name = text(data, "citizen_name", 200, optional=True)
    appointment_id = store.create_appointment(
        kiosk_id,
        clerk_id,
        text(data, "service", 200),
        start.astimezone(UTC),
        end.astimezone(UTC),
        [origin(o) for o in origins],
        start_url,
        citizen_name,
    )
    return web.json_response(appointment_json(store.appointment(appointment_id)), status=201)


def validate_ice_servers(servers: Any) -> None:
    if not isinstance(servers, list):
        raise ApiError(400, "invalid_field", "ice_servers: expected an array")
    for i, server in enumerate(servers):
        if not isinstance(server, dict):
            raise ApiError(400, "invalid_field", f"ice_servers[{i}]: expected an object")
        urls = server.get("urls")
        schemes = ("stun:", "turn:", "turns:")
        if (
            not isinstance(urls, list)
            or not urls
            or not all(isinstance(u, str) and u.startswith(schemes) for u in urls)
        ):
            raise ApiError(
                400, "invalid_field", f"ice_servers[{i}].urls: expected stun:, turn: or turns: URLs"
            )
        for key in ("username", "credential"):
            if server.get(key) is not None and not isinstance(server[key], str):
                raise ApiError(400, "invalid_field", f"ice_servers[{i}].{key}: expected a string")


async def admin_put_config(request: web.Request) -> web.Response:
    admin(request)
    data = await read_json_object(request)
    allowed = {*SECONDS_KEYS, "ice_servers", "staff_pin", "evaluation_url"}
    unknown = set(data) - allowed
    if unknown:
        raise ApiError(400, "invalid_field", f"unknown keys: {', '.join(sorted(unknown))}")
    for key in SECONDS_KEYS:
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ApiError(400, "invalid_field", f"{key}: expected a number of seconds")
    if "ice_servers" in data:
        validate_ice_servers(data["ice_servers"])
    if data.get("evaluation_url") is not None:
        checked_evaluation_url(data["evaluation_url"])
    update = {k: v for k, v in data.items() if k != "staff_pin"}
    if "staff_pin" in data:
        pin = data["staff_pin"]
        # A string: as a JSON number a PIN would lose its leading zeros.
        if pin is not None and not (isinstance(pin, str) and valid_pin(pin)):
            raise ApiError(
                400,
                "invalid_field",
                f"staff_pin: expected {PIN_DIGITS[0]} to {PIN_DIGITS[1]} digits as a string, or null to remove it",
            )
        # PBKDF2 takes a noticeable fraction of a second: off the loop, which serves the long-polls.
        update["staff_pin_hash"] = None if pin is None else await asyncio.to_thread(hash_pin, pin)
    config = request.app[STORE].get_setting("kiosk_config") or {}
    config.update(update)
    request.app[STORE].put_setting("kiosk_config", config)
    return web.json_response(config)


# --------------------------------------------------------------------------- evaluation (evaluation.py)


async def clerk_rating(request: web.Request) -> web.Response:
    """The clerk's rating of a session once its call has ended: a face or null (skipped), and an
    optional remark. The first rating stands."""
    row = clerk_appointment(request)
    face, remark = checked_clerk_rating(await read_json_object(request))
    store = request.app[STORE]
    if not store.call(row["id"]).ended:
        raise ApiError(409, "call_not_ended", "a session is rated once its call has ended")
    if not store.rate_as_clerk(row["id"], face, remark):
        raise ApiError(409, "already_rated", "this session was already rated")
    return web.Response(status=204)


async def admin_usage(request: web.Request) -> web.Response:
    admin(request)
    store = request.app[STORE]
    return usage_response(
        request.query, store.usage_appointments(), store.session_reports(), store.usage_citizen_ratings()
    )


# --------------------------------------------------------------------------- clerk console


async def clerk_console(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "clerk.html", headers={"Cache-Control": "no-cache"})


async def demo_form(request: web.Request) -> web.FileResponse:
    return web.FileResponse(DEMO_FORM / "index.html", headers={"Cache-Control": "no-cache"})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "api": "v1"})


def create_app(store: Store, admin_token: str, options: CentralOptions | None = None) -> web.Application:
    options = options or CentralOptions()
    # CORS outermost, so that the JSON errors a clerk app gets are readable by it too.
    app = web.Application(
        middlewares=[cors_middleware(options.clerk_origins), json_errors], client_max_size=MAX_BODY
    )
    app[STORE] = store
    app[ADMIN_TOKEN] = admin_token
    app[WATCHES] = CallWatches()
    app[GUARD] = Guard(options)
    app[OPTIONS] = options
    app.on_response_prepare.append(security_headers)
    app.on_startup.append(start_relay)
    app.on_cleanup.append(stop_relay)
    v1 = "/api/v1"
    app.router.add_get(f"{v1}/health", health)
    app.router.add_post(f"{v1}/enrollment", enroll)
    app.router.add_get(f"{v1}/kiosk/schedule", schedule)
    app.router.add_get(f"{v1}/kiosk/config", kiosk_config)
    app.router.add_post(f"{v1}/kiosk/heartbeat", heartbeat)
    app.router.add_post(f"{v1}/kiosk/uplink-probe", uplink_probe)
    app.router.add_post(f"{v1}/kiosk/documents/expired", document_expired)
    app.router.add_post(f"{v1}/kiosk/session-reports", session_report)
    app.router.add_post(f"{v1}/kiosk/walk-ins", kiosk_walk_in)
    app.router.add_get(f"{v1}/kiosk/walk-in-services", kiosk_walk_in_services)
    app.router.add_put(f"{v1}/appointments/{{appointment_id}}/offer", post_offer)
    app.router.add_put(f"{v1}/appointments/{{appointment_id}}/answer", post_answer)
    app.router.add_post(f"{v1}/appointments/{{appointment_id}}/hangup", hang_up)
    app.router.add_get(f"{v1}/appointments/{{appointment_id}}/call", call_state)
    app.router.add_get(f"{v1}/clerk/appointments", clerk_appointments)
    app.router.add_get(f"{v1}/clerk/config", clerk_config)
    app.router.add_post(f"{v1}/clerk/walk-in-codes", clerk_walk_in_code)
    app.router.add_get(f"{v1}/clerk/walk-in-availability", clerk_walk_in_availability)
    app.router.add_put(f"{v1}/clerk/walk-in-availability", clerk_set_walk_in_availability)
    app.router.add_post(f"{v1}/clerk/walk-in-availability/keep-alive", clerk_keep_walk_in_availability)
    app.router.add_post(f"{v1}/admin/kiosks", admin_create_kiosk)
    app.router.add_get(f"{v1}/admin/kiosks", admin_list_kiosks)
    app.router.add_get(f"{v1}/admin/fleet", admin_fleet)
    app.router.add_get(f"{v1}/admin/expired-documents", admin_expired_documents)
    app.router.add_get(f"{v1}/admin/session-reports", admin_session_reports)
    app.router.add_post(f"{v1}/admin/kiosks/{{kiosk_id}}/enrollment-codes", admin_enrollment_code)
    app.router.add_post(f"{v1}/admin/clerks", admin_create_clerk)
    app.router.add_post(f"{v1}/admin/appointments", admin_create_appointment)
    app.router.add_put(f"{v1}/admin/config", admin_put_config)
    app.router.add_post(f"{v1}/clerk/appointments/{{appointment_id}}/rating", clerk_rating)
    app.router.add_get(f"{v1}/admin/usage", admin_usage)
    # Real bookings (RDV Service Public, ICS feeds): imported here, since its handlers use this module's.
    from .bookings_api import add_booking_routes

    add_booking_routes(app, v1)
    from .commands_api import add_command_routes

    add_command_routes(app, v1)
    from .software_targets import add_software_target_routes

    add_software_target_routes(app, v1)
    from .releases import add_release_routes

    add_release_routes(app, v1)
    app.router.add_get("/clerk", clerk_console)
    app.router.add_get("/fleet", fleet_page)
    app.router.add_static("/clerk/static", STATIC)
    app.router.add_get("/demo-form/", demo_form)
    app.router.add_static("/demo-form", DEMO_FORM)
    app.router.add_get("/api/v1/openapi.yaml", openapi_document)
    app.router.add_get(f"{v1}/schemas/", message_schemas)
    app.router.add_get(f"{v1}/schemas/{{name}}.json", message_schema)
    return app


async def openapi_document(request: web.Request) -> web.FileResponse:
    return web.FileResponse(Path(__file__).parent / "openapi.yaml")


# --------------------------------------------------------------------------- the data channels' message schemas


def schema_files() -> dict[str, Path]:
    """The published message schemas by name (`control.pointer`, `documents.doc.offer`…): only these
    files are ever served, whatever name a request asks for."""
    return {path.name.removesuffix(".json"): path for path in sorted(SCHEMAS.glob("*.json"))}


async def message_schemas(request: web.Request) -> web.Response:
    listing = []
    for name, path in schema_files().items():
        schema = json.loads(path.read_text("utf-8"))
        listing.append(
            {
                "name": name,
                "url": f"/api/v1/schemas/{name}.json",
                "channel": schema["x-channel"],
                "direction": schema["x-direction"],
                "type": schema["x-type"],
                "version": schema["x-version"],
                "title": schema["title"],
            }
        )
    return web.json_response({"schemas": listing}, headers={"Cache-Control": "no-cache"})


async def message_schema(request: web.Request) -> web.Response:
    path = schema_files().get(request.match_info["name"])
    if path is None:
        raise ApiError(404, "not_found", "no such message schema (see /api/v1/schemas/)")
    return web.Response(
        body=path.read_bytes(), content_type="application/schema+json", headers={"Cache-Control": "no-cache"}
    )
