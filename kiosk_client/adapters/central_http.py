"""The Central API v1 over httpx. Translates HTTP failures into the core's error tree."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ..core import bounded_json
from ..core.clock import CentralClock
from ..core.commands import CommandResult, KioskCommand, parse_commands
from ..core.document_desk import ExpiredDocument
from ..core.errors import AuthenticationFailed, CentralRejected, CentralUnavailable, MalformedResponse
from ..core.models import (
    Appointment,
    CallSignal,
    CallTicket,
    Enrollment,
    Heartbeat,
    RemoteConfig,
    Schedule,
    SessionDescription,
    WalkInService,
)
from ..core.releases import MAX_WHEEL_BYTES
from ..core.wire import (
    parse_call_signal,
    parse_call_ticket,
    parse_enrollment,
    parse_remote_config,
    parse_schedule,
    parse_walk_in,
    parse_walk_in_services,
)

log = logging.getLogger(__name__)

API = "/api/v1"
MAX_RESPONSE = 2 * 1024 * 1024
# A connection attempt made while the link is down waits for SYN retransmissions (1 s, then 3 s, 7 s…):
# given up soon, the next attempt sends its SYN as soon as the link is back. Enough for TCP and TLS
# over a 600 ms satellite round trip.
CONNECT_TIMEOUT_S = 2.5


def _rejection(response: httpx.Response) -> CentralRejected:
    code, message = "http_error", response.reason_phrase
    try:
        error = bounded_json.loads(response.content).get("error", {})
        code = str(error.get("code", code))[:64]
        message = str(error.get("message", message))[:300]
    except (ValueError, AttributeError):
        pass
    if response.status_code in (401, 403):
        return AuthenticationFailed(response.status_code, code, message)
    return CentralRejected(response.status_code, code, message)


class HttpCentral:
    def __init__(
        self,
        base_url: str,
        device_token: str,
        clock: CentralClock | None = None,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._clock = clock
        self._timeout = timeout_s
        self._new_client = partial(
            httpx.AsyncClient,
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": "kiosk-client"}
            | ({"Authorization": f"Bearer {device_token}"} if device_token else {}),
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,
        )
        self._client = self._new_client()
        self._retired: list[httpx.AsyncClient] = []
        self._closing: set[asyncio.Future[None]] = set()

    async def aclose(self) -> None:
        for client in (*self._retired, self._client):
            await client.aclose()
        self._retired.clear()

    def _fresh_connections(self, failed: httpx.AsyncClient) -> None:
        """After a network failure, every pooled connection may be dead (a cut on the kiosk's link kills
        them all silently): the next requests open new ones instead of waiting out a timeout on each.
        Requests still running on the old pool finish there (a long-poll may be alive); it is closed at
        the next failure, when nothing can be waiting on it any more."""
        if failed is not self._client:
            return  # another request already started afresh
        for old in self._retired:
            closing = asyncio.ensure_future(old.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        self._retired = [failed]
        self._client = self._new_client()

    def _unreachable(
        self, client: httpx.AsyncClient, method: str, path: str, exc: httpx.HTTPError
    ) -> CentralUnavailable:
        """httpx's failure as the core's error; a dead connection starts the pool afresh."""
        if isinstance(exc, httpx.TimeoutException):
            self._fresh_connections(client)
            return CentralUnavailable(
                f"{method} {path}: the central did not answer in time ({type(exc).__name__})"
            )
        if isinstance(exc, httpx.TransportError):
            self._fresh_connections(client)
        return CentralUnavailable(f"{method} {path}: cannot reach the central ({exc})")

    async def _request(
        self, method: str, path: str, *, timeout_s: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        sent = self._clock.local_now() if self._clock else None
        client = self._client
        timeout = httpx.Timeout(timeout_s or self._timeout, connect=min(CONNECT_TIMEOUT_S, self._timeout))
        try:
            response = await client.request(method, API + path, timeout=timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(client, method, path, exc) from None
        if self._clock is not None and sent is not None:
            self._clock.observe(response.headers.get("Date"), sent, self._clock.local_now())
        if response.status_code >= 500:
            raise CentralUnavailable(f"{method} {path}: the central failed ({response.status_code})")
        if response.status_code >= 400:
            raise _rejection(response)
        if len(response.content) > MAX_RESPONSE:
            raise MalformedResponse(f"{method} {path}: response larger than {MAX_RESPONSE} bytes")
        return response

    @staticmethod
    def _json(response: httpx.Response) -> object:
        try:
            return bounded_json.loads(response.content)
        except bounded_json.UnsafeJson as exc:
            raise MalformedResponse(f"{response.request.url.path}: the response is {exc}") from None

    async def fetch_schedule(self, etag: str | None) -> Schedule | None:
        headers = {"If-None-Match": etag} if etag else {}
        response = await self._request("GET", "/kiosk/schedule", headers=headers)
        if response.status_code == 304:
            return None
        return parse_schedule(self._json(response), response.headers.get("ETag"))

    async def fetch_config(self) -> RemoteConfig:
        return parse_remote_config(self._json(await self._request("GET", "/kiosk/config")))

    async def post_offer(self, appointment_id: str, offer: SessionDescription) -> CallTicket:
        response = await self._request(
            "PUT", f"/appointments/{appointment_id}/offer", json={"type": offer.type, "sdp": offer.sdp}
        )
        return parse_call_ticket(self._json(response))

    async def wait_call(self, appointment_id: str, after_version: int, wait_s: float) -> CallSignal | None:
        response = await self._request(
            "GET",
            f"/appointments/{appointment_id}/call",
            params={"after": after_version, "wait": wait_s},
            timeout_s=wait_s + 10,
        )
        if response.status_code == 204:
            return None
        return parse_call_signal(self._json(response))

    async def hang_up(self, appointment_id: str, call_id: str, reason: str) -> None:
        await self._request(
            "POST", f"/appointments/{appointment_id}/hangup", json={"call_id": call_id, "reason": reason}
        )

    async def send_heartbeat(self, heartbeat: Heartbeat) -> tuple[KioskCommand, ...]:
        response = await self._request(
            "POST",
            "/kiosk/heartbeat",
            json={
                "state": heartbeat.state,
                "appointment_id": heartbeat.appointment_id,
                "devices": heartbeat.devices,
                "software_version": heartbeat.software_version,
                **({"preflight": heartbeat.preflight} if heartbeat.preflight is not None else {}),
                **({"update": heartbeat.update} if heartbeat.update is not None else {}),
            },
        )
        if response.status_code == 204 or not response.content:
            return ()  # nothing for this kiosk (and what a central without commands answers)
        try:
            return parse_commands(bounded_json.loads(response.content))
        except (bounded_json.UnsafeJson, MalformedResponse) as exc:
            # A command list the kiosk cannot read runs nothing: logged for the central's maintainers.
            log.error("the heartbeat's answer carries an unreadable command list, ignored: %s", exc)
            return ()

    async def post_command_result(self, result: CommandResult) -> None:
        path = f"/kiosk/commands/{result.command_id}/result"
        if result.screenshot is not None:
            await self._request(
                "POST", path, content=result.screenshot, headers={"Content-Type": "image/png"}, timeout_s=60.0
            )
            return
        await self._request(
            "POST",
            path,
            json={"outcome": result.outcome.value, **({"reason": result.reason} if result.reason else {})},
        )

    async def measure_uplink(self, size_bytes: int) -> float:
        payload = secrets.token_bytes(size_bytes)  # incompressible
        started = time.monotonic()
        await self._request(
            "POST",
            "/kiosk/uplink-probe",
            content=payload,
            headers={"Content-Type": "application/octet-stream"},
            timeout_s=60.0,
        )
        return size_bytes * 8 / 1000 / max(time.monotonic() - started, 1e-3)

    async def download_software(self, version: str, sha256: str, destination: Path) -> None:
        path = f"/kiosk/software/{version}"
        partial_file = destination.with_name(destination.name + ".part")
        digest = hashlib.sha256()
        received = 0
        client = self._client
        try:
            # A wheel is megabytes: streamed to disk (never whole in memory), over a generous timeout.
            async with client.stream(
                "GET", API + path, timeout=httpx.Timeout(120.0, connect=CONNECT_TIMEOUT_S)
            ) as response:
                if response.status_code >= 500:
                    raise CentralUnavailable(f"GET {path}: the central failed ({response.status_code})")
                if response.status_code >= 400:
                    await response.aread()
                    raise _rejection(response)
                with partial_file.open("wb") as file:
                    async for chunk in response.aiter_bytes(256 * 1024):
                        received += len(chunk)
                        if received > MAX_WHEEL_BYTES:
                            raise MalformedResponse(f"GET {path}: more than {MAX_WHEEL_BYTES} bytes")
                        digest.update(chunk)
                        file.write(chunk)
                    file.flush()
                    os.fsync(file.fileno())
        except BaseException as exc:
            with contextlib.suppress(OSError):
                partial_file.unlink(missing_ok=True)
            if isinstance(exc, httpx.HTTPError):
                raise self._unreachable(client, "GET", path, exc) from None
            raise
        if digest.hexdigest() != sha256:
            partial_file.unlink(missing_ok=True)
            raise MalformedResponse(f"GET {path}: the wheel's SHA-256 is not the one the config gave")
        partial_file.replace(destination)

    async def post_session_report(self, report: Mapping[str, object]) -> None:
        await self._request("POST", "/kiosk/session-reports", json=dict(report))

    async def report_document_expired(self, expired: ExpiredDocument) -> None:
        await self._request(
            "POST",
            "/kiosk/documents/expired",
            json={
                "document_id": expired.document_id,
                "appointment_id": expired.appointment_id,
                "sha256": expired.sha256,
                "reason": expired.reason,
            },
        )

    async def start_walk_in(self, code: str) -> Appointment:
        response = await self._request("POST", "/kiosk/walk-ins", json={"code": code})
        return parse_walk_in(self._json(response))

    async def walk_in_services(self) -> tuple[WalkInService, ...]:
        return parse_walk_in_services(self._json(await self._request("GET", "/kiosk/walk-in-services")))

    async def start_walk_in_with_service(self, service: str) -> Appointment:
        response = await self._request("POST", "/kiosk/walk-ins", json={"service": service})
        return parse_walk_in(self._json(response))


async def enroll(
    base_url: str, code: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> Enrollment:
    """Trade a one-time enrolment code for a device token."""
    central = HttpCentral(base_url, "", transport=transport)
    try:
        response = await central._request("POST", "/enrollment", json={"code": code.strip()})
        return parse_enrollment(HttpCentral._json(response))
    finally:
        await central.aclose()
