"""A FAKE RDV Service Public for tests: aiohttp on loopback serving recorded API pages and an agent's
ICS feed, with the real one's URLs, authentication headers, pagination and `Date` header (as read in
betagouv/rdv-service-public: Api::V1::RdvsController, Api::V1::BaseController, IcsCalendarController).
Also the recorded payloads in tests/data/rdv_service_public/, with their dates moved to when a test
needs them, and the webhook signature RDV Service Public computes."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

DATA = Path(__file__).parent / "data" / "rdv_service_public"
PARIS = ZoneInfo("Europe/Paris")
RECORDED_DAY = "2026-12-14"  # the day of the recorded rdvs
ORGANISATION_ID = "4242"
CALENDAR_UID = "f3b1c9d2e8a7"  # an agent's calendar_uid: /calendrier/<uid>.ics
AGENT_TOKEN = {"access-token": "SFYBngO55ImjD1HOcv-ivQ", "client": "Z6EihQAY9NWsZByfZ47i_Q", "uid": "claire.martin@caf-cantal.example.fr"}  # fmt: skip


def recorded(name: str) -> bytes:
    return (DATA / name).read_bytes()


def ruby_time(moment: datetime) -> str:
    """As RDV Service Public prints times: "2026-12-14 10:00:00 +0100"."""
    return moment.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S %z")


def sign(secret: str, body: bytes) -> str:
    """X-Lapin-Signature, as WebhookJob makes it: OpenSSL::HMAC.hexdigest("SHA256", secret, payload)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def moved_to(body: bytes, day: datetime) -> bytes:
    """A recorded payload with its rdvs moved from the recorded day to `day` (same times of day)."""
    return body.replace(RECORDED_DAY.encode(), day.astimezone(PARIS).strftime("%Y-%m-%d").encode())


def webhook(
    name: str, *, starts_at: datetime | None = None, minutes: int | None = None, at: datetime
) -> bytes:
    """A recorded webhook body, its rdv moved to start at `starts_at` and its meta.timestamp `at`,
    serialized compactly as RDV Service Public does."""
    payload = json.loads(recorded(name))
    if starts_at is not None:
        minutes = minutes or int(payload["data"]["duration_in_min"])
        payload["data"]["starts_at"] = ruby_time(starts_at)
        payload["data"]["ends_at"] = ruby_time(starts_at + timedelta(minutes=minutes))
        payload["data"]["duration_in_min"] = minutes
    payload["meta"]["timestamp"] = ruby_time(at)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class FakeRdvServicePublic:
    """Serve `pages` (the JSON documents of GET /api/v1/organisations/4242/rdvs, page 1, 2, …) and
    `ics` (the agent's calendar). `requests` records each request's path, query and headers."""

    pages: list[bytes] = field(default_factory=list)
    ics: bytes = b""
    fail_with: int | None = None  # answer every API request with this status
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _rdvs(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"path": request.path, "query": dict(request.query), "headers": dict(request.headers)}
        )
        if self.fail_with is not None:
            return web.json_response({"errors": ["Unexpected internal error"]}, status=self.fail_with)
        if any(request.headers.get(k) != v for k, v in AGENT_TOKEN.items()):
            # Devise Token Auth's refusal
            return web.json_response(
                {"errors": ["Vous devez vous connecter ou vous inscrire pour continuer."]}, status=401
            )
        if request.match_info["organisation_id"] != ORGANISATION_ID:
            return web.json_response({"errors": ["Couldn't find Organisation"]}, status=404)
        page = int(request.query.get("page", "1"))
        if not 1 <= page <= len(self.pages):
            return web.json_response({"rdvs": [], "meta": {"current_page": page, "next_page": None}})
        return web.Response(body=self.pages[page - 1], content_type="application/json")

    async def _calendar(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"path": request.path, "query": dict(request.query), "headers": dict(request.headers)}
        )
        if request.match_info["file"] != f"{CALENDAR_UID}.ics":
            return web.Response(status=404)
        return web.Response(body=self.ics, content_type="text/calendar", charset="utf-8")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/v1/organisations/{organisation_id}/rdvs", self._rdvs)
        app.router.add_get("/calendrier/{file}", self._calendar)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
