"""The routes of commands from IT staff to a kiosk (see commands.py): IT staff post and list them and
fetch a screenshot (admin token); the kiosk hears them in its heartbeat's answer (app.heartbeat) and
posts each result here, once."""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from datetime import timedelta
from typing import Any

from aiohttp import web

from .app import STORE, admin, device, text
from .commands import (
    COMMANDS_KEPT,
    DEFAULT_EXPIRY,
    KINDS,
    MAX_EXPIRY,
    MAX_PENDING_PER_KIOSK,
    MAX_SCREENSHOT_BYTES,
    MIN_EXPIRY,
    OUTCOMES,
    command_json,
    png_size,
    stamp,
)
from .errors import ApiError
from .json_body import read_json_object
from .store import utcnow

log = logging.getLogger(__name__)

REASON_CHARS = 200


async def admin_post_command(request: web.Request) -> web.Response:
    """IT staff ask a kiosk to reload, restart or take a screenshot, within an expiry."""
    admin(request)
    store = request.app[STORE]
    kiosk_id = request.match_info["kiosk_id"]
    if store.kiosk(kiosk_id) is None:
        raise ApiError(404, "not_found", "no such kiosk")
    data = await read_json_object(request)
    unknown = set(data) - {"kind", "expires_in_seconds"}
    if unknown:
        raise ApiError(400, "invalid_field", f"unknown keys: {', '.join(sorted(unknown))[:200]}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ApiError(400, "invalid_field", f"kind: expected one of {', '.join(KINDS)}")
    raw = data.get("expires_in_seconds", DEFAULT_EXPIRY.total_seconds())
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or not math.isfinite(raw)
        or not MIN_EXPIRY.total_seconds() <= raw <= MAX_EXPIRY.total_seconds()
    ):
        raise ApiError(
            400,
            "invalid_field",
            f"expires_in_seconds: expected {MIN_EXPIRY.total_seconds():.0f} to "
            f"{MAX_EXPIRY.total_seconds():.0f} seconds",
        )
    now = utcnow()
    if store.pending_commands(kiosk_id, stamp(now)) >= MAX_PENDING_PER_KIOSK:
        raise ApiError(
            409, "too_many_pending", f"this kiosk has {MAX_PENDING_PER_KIOSK} commands waiting already"
        )
    command_id = store.create_command(
        kiosk_id,
        kind,
        stamp(now),
        stamp(now + timedelta(seconds=raw)),
        forget_before=stamp(now - COMMANDS_KEPT),
    )
    log.info("command %s (%s) for kiosk %s, valid %.0f s", command_id, kind, kiosk_id, raw)
    row = store.command(command_id)
    return web.json_response(command_json(row, now), status=201)


async def admin_list_commands(request: web.Request) -> web.Response:
    """The latest commands (newest first), of one kiosk (?kiosk_id=) or all, with their states."""
    admin(request)
    kiosk_id = request.query.get("kiosk_id")
    if kiosk_id is not None and not (0 < len(kiosk_id) <= 64 and kiosk_id.isprintable()):
        raise ApiError(400, "invalid_field", "kiosk_id: expected a kiosk's id")
    now = utcnow()
    rows = request.app[STORE].commands(kiosk_id)
    return web.json_response(
        {"at": now.isoformat(), "commands": [command_json(r, now) for r in rows]},
        headers={"Cache-Control": "no-store"},
    )


async def admin_command_screenshot(request: web.Request) -> web.Response:
    admin(request)
    row = request.app[STORE].screenshot(request.match_info["command_id"])
    if row is None:
        raise ApiError(404, "not_found", "no screenshot for this command (not taken yet, or no longer kept)")
    return web.Response(
        body=base64.b64decode(row["png_base64"]),
        content_type="image/png",
        headers={"Cache-Control": "no-store"},
    )


async def _read_png(request: web.Request) -> bytes:
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > MAX_SCREENSHOT_BYTES:
                raise ApiError(413, "too_large", f"a screenshot is at most {MAX_SCREENSHOT_BYTES} bytes")
    except web.RequestPayloadError:
        raise ApiError(400, "invalid_body", "the request body could not be decoded") from None
    return bytes(body)


async def kiosk_command_result(request: web.Request) -> web.Response:
    """The kiosk's result: JSON {outcome, reason} or, for a screenshot that was taken, the PNG itself
    (`Content-Type: image/png`). Kept once: the same result again is answered 200 and changes
    nothing; a different one is refused (409)."""
    kiosk = device(request)
    store = request.app[STORE]
    command_id = request.match_info["command_id"]
    row = store.command(command_id)
    if row is None or row["kiosk_id"] != kiosk["id"]:
        raise ApiError(404, "not_found", "no such command for this kiosk")
    png: bytes | None = None
    size = (0, 0)
    if request.content_type == "image/png":
        if row["kind"] != "screenshot":
            raise ApiError(400, "invalid_field", "only a screenshot command's result is a picture")
        png = await _read_png(request)
        try:
            size = await asyncio.to_thread(png_size, png)  # inflating a few MB: off the loop
        except ValueError as exc:
            raise ApiError(400, "invalid_png", f"the screenshot is not a valid PNG: {exc}") from None
        outcome: str = "done"
        reason: str | None = None
    else:
        data = await read_json_object(request)
        outcome = str(data.get("outcome"))
        if data.get("outcome") not in OUTCOMES:
            raise ApiError(400, "invalid_field", f"outcome: expected one of {', '.join(OUTCOMES)}")
        reason = text(data, "reason", REASON_CHARS, optional=True)
        if reason is not None and not reason.isprintable():
            raise ApiError(400, "invalid_field", "reason: expected printable text")
        if outcome == "done" and row["kind"] == "screenshot":
            raise ApiError(400, "invalid_field", "a screenshot that was taken is posted as image/png")
    row = store.command(command_id)  # again: another post may have finished it meanwhile
    assert row is not None
    if row["state"] in OUTCOMES:
        if row["state"] != outcome:
            raise ApiError(409, "result_already_posted", f"this command's result is already {row['state']}")
        return _answer(row)  # the same result sent again (its answer was lost): nothing changes
    if row["delivered_at"] is None:
        raise ApiError(409, "not_delivered", "this command was never delivered to the kiosk")
    now = stamp(utcnow())
    if not store.finish_command(command_id, outcome, reason, now):
        # Another post (another central process) finished it between the read and this write.
        raced = store.command(command_id)
        assert raced is not None
        if raced["state"] != outcome:
            raise ApiError(409, "result_already_posted", f"this command's result is already {raced['state']}")
        return _answer(raced)
    if png is not None:
        store.store_screenshot(command_id, kiosk["id"], base64.b64encode(png).decode(), size, len(png), now)
    log.info("command %s: %s %s", command_id, outcome, reason or "")
    finished = store.command(command_id)
    assert finished is not None
    return _answer(finished)


def _answer(row: Any) -> web.Response:
    return web.json_response({"id": row["id"], "state": row["state"]})


def add_command_routes(app: web.Application, v1: str) -> None:
    app.router.add_post(f"{v1}/admin/kiosks/{{kiosk_id}}/commands", admin_post_command)
    app.router.add_get(f"{v1}/admin/commands", admin_list_commands)
    app.router.add_get(f"{v1}/admin/commands/{{command_id}}/screenshot", admin_command_screenshot)
    app.router.add_post(f"{v1}/kiosk/commands/{{command_id}}/result", kiosk_command_result)
