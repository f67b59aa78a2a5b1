"""Strict reading of JSON documents from the network into the core's models.

Every field is checked for type; unknown fields are ignored (forward compatibility). Errors name the
field path and what was expected, so a log line is enough to fix the central.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .errors import MalformedResponse
from .models import (
    Appointment,
    CallSignal,
    CallTicket,
    Enrollment,
    IceServer,
    RemoteConfig,
    Schedule,
    SessionDescription,
    WalkInService,
)
from .navigation import web_origin
from .releases import SHA256
from .staff_pin import check_hash_format

MAX_APPOINTMENTS = 500
MAX_TEXT = 10_000
MAX_SDP = 200_000


def _type_name(value: object) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }.get(type(value), "null" if value is None else type(value).__name__)


class Reader:
    """Typed access to one JSON object, with the path used in error messages."""

    def __init__(self, value: object, path: str = "$") -> None:
        if not isinstance(value, Mapping):
            raise MalformedResponse(f"{path}: expected an object, got {_type_name(value)}")
        self._obj: Mapping[str, Any] = value
        self.path = path

    def _get(self, key: str, optional: bool) -> Any:
        if key not in self._obj or self._obj[key] is None:
            if optional:
                return None
            raise MalformedResponse(f"{self.path}.{key}: missing")
        return self._obj[key]

    def text(self, key: str, *, max_len: int = MAX_TEXT) -> str:
        value = self._get(key, False)
        if not isinstance(value, str):
            raise MalformedResponse(f"{self.path}.{key}: expected a string, got {_type_name(value)}")
        if len(value) > max_len:
            raise MalformedResponse(f"{self.path}.{key}: longer than {max_len} characters")
        return value

    def optional_text(self, key: str, *, max_len: int = MAX_TEXT) -> str | None:
        if self._get(key, True) is None:
            return None
        return self.text(key, max_len=max_len)

    def integer(self, key: str) -> int:
        value = self._get(key, False)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedResponse(f"{self.path}.{key}: expected an integer, got {_type_name(value)}")
        return value

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._get(key, True)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise MalformedResponse(f"{self.path}.{key}: expected a number, got {_type_name(value)}")
        if not minimum <= value <= maximum:
            raise MalformedResponse(f"{self.path}.{key}: expected a number from {minimum} to {maximum}")
        return float(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, True)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise MalformedResponse(f"{self.path}.{key}: expected true or false, got {_type_name(value)}")
        return value

    def timestamp(self, key: str) -> datetime:
        raw = self.text(key, max_len=64)
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise MalformedResponse(
                f"{self.path}.{key}: expected an ISO 8601 date-time, got {raw!r}"
            ) from None
        if value.tzinfo is None:
            raise MalformedResponse(f"{self.path}.{key}: date-time without a time zone: {raw!r}")
        return value

    def array(self, key: str, *, optional: bool = False, max_items: int = MAX_APPOINTMENTS) -> Sequence[Any]:
        value = self._get(key, optional)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise MalformedResponse(f"{self.path}.{key}: expected an array, got {_type_name(value)}")
        if len(value) > max_items:
            raise MalformedResponse(f"{self.path}.{key}: more than {max_items} items")
        return value

    def texts(self, key: str, *, optional: bool = True) -> tuple[str, ...]:
        items = self.array(key, optional=optional, max_items=100)
        for i, item in enumerate(items):
            if not isinstance(item, str) or len(item) > 2048:
                raise MalformedResponse(f"{self.path}.{key}[{i}]: expected a string")
        return tuple(items)

    def child(self, key: str) -> Reader:
        return Reader(self._get(key, False), f"{self.path}.{key}")


def _web_origin(raw: str, path: str) -> str:
    origin = web_origin(raw)
    if origin is None:
        raise MalformedResponse(f"{path}: expected a web origin like https://example.org, got {raw!r}")
    return origin


def parse_appointment(value: object, path: str) -> Appointment:
    r = Reader(value, path)
    start, end = r.timestamp("start"), r.timestamp("end")
    if end <= start:
        raise MalformedResponse(f"{path}: end is not after start")
    origins = tuple(_web_origin(o, f"{path}.allowed_origins") for o in r.texts("allowed_origins"))
    start_url = r.optional_text("start_url", max_len=2048)
    if start_url is not None and urlsplit(start_url).scheme not in ("https", "http"):
        raise MalformedResponse(f"{path}.start_url: expected an http(s) URL")
    return Appointment(
        id=r.text("id", max_len=128),
        service=r.text("service", max_len=200),
        clerk_name=r.text("clerk_name", max_len=200),
        start=start,
        end=end,
        allowed_origins=origins,
        start_url=start_url,
    )


def parse_schedule(document: object, etag: str | None) -> Schedule:
    """Read a schedule. A broken envelope rejects the whole document; a broken appointment is set
    aside (and reported) so that one bad entry cannot hide every other citizen's appointment."""
    r = Reader(document)
    kiosk = r.child("kiosk")
    appointments: list[Appointment] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(r.array("appointments")):
        try:
            appointment = parse_appointment(item, f"$.appointments[{i}]")
        except MalformedResponse as exc:
            ident = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else f"#{i}"
            rejected.append((str(ident)[:128], str(exc)))
            continue
        if appointment.id in seen:
            rejected.append((appointment.id, f"$.appointments[{i}]: duplicate id"))
            continue
        seen.add(appointment.id)
        appointments.append(appointment)
    appointments.sort(key=lambda a: a.start)
    return Schedule(
        kiosk_name=kiosk.text("name", max_len=200),
        site_name=kiosk.text("site_name", max_len=200),
        appointments=tuple(appointments),
        etag=etag,
        rejected=tuple(rejected),
    )


def schedule_to_document(schedule: Schedule) -> dict[str, Any]:
    """The inverse of parse_schedule, used to keep the last good schedule on disk."""
    return {
        "kiosk": {"name": schedule.kiosk_name, "site_name": schedule.site_name},
        "appointments": [
            {
                "id": a.id,
                "service": a.service,
                "clerk_name": a.clerk_name,
                "start": a.start.isoformat(),
                "end": a.end.isoformat(),
                "allowed_origins": list(a.allowed_origins),
                "start_url": a.start_url,
            }
            for a in schedule.appointments
        ],
    }


def parse_remote_config(document: object) -> RemoteConfig:
    r = Reader(document)
    servers: list[IceServer] = []
    for i, item in enumerate(r.array("ice_servers", optional=True, max_items=10)):
        s = Reader(item, f"$.ice_servers[{i}]")
        urls = s.texts("urls", optional=False)
        for url in urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise MalformedResponse(f"{s.path}.urls: expected stun:, turn: or turns: URLs, got {url!r}")
        servers.append(
            IceServer(
                urls, s.optional_text("username", max_len=512), s.optional_text("credential", max_len=512)
            )
        )
    return RemoteConfig(
        ice_servers=tuple(servers),
        poll_interval_s=r.number("poll_interval_seconds", 15.0, minimum=1, maximum=3600),
        join_before_s=r.number("join_before_seconds", 90.0, minimum=0, maximum=3600),
        no_show_after_s=r.number("no_show_after_seconds", 900.0, minimum=10, maximum=4 * 3600),
        staff_pin_hash=_staff_pin_hash(r.optional_text("staff_pin_hash", max_len=256)),
        evaluation_url=_evaluation_url(r.optional_text("evaluation_url", max_len=MAX_EVALUATION_URL)),
        software_target=r.optional_text("software_target", max_len=64),
        software_target_sha256=_sha256(r.optional_text("software_target_sha256", max_len=64)),
    )


def _sha256(value: str | None) -> str | None:
    if value is not None and not SHA256.match(value):
        raise MalformedResponse("$.software_target_sha256: expected 64 lowercase hex characters")
    return value


MAX_EVALUATION_URL = 300  # a QR code a phone reads at arm's length from a kiosk's screen


def _evaluation_url(value: str | None) -> str | None:
    """An https address of printable ASCII (shown as a QR code and as text to the citizen)."""
    if value is None:
        return None
    if (
        not value.startswith("https://")
        or len(value) <= len("https://")
        or not (value.isascii() and value.isprintable() and " " not in value)
    ):
        raise MalformedResponse("$.evaluation_url: expected an https:// address")
    return value


def _staff_pin_hash(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_hash_format(value)
    except ValueError as exc:
        raise MalformedResponse(f"$.staff_pin_hash: {exc}") from None


def remote_config_to_document(config: RemoteConfig) -> dict[str, Any]:
    return {
        "ice_servers": [
            {"urls": list(s.urls), "username": s.username, "credential": s.credential}
            for s in config.ice_servers
        ],
        "poll_interval_seconds": config.poll_interval_s,
        "join_before_seconds": config.join_before_s,
        "no_show_after_seconds": config.no_show_after_s,
        "evaluation_url": config.evaluation_url,
        "staff_pin_hash": config.staff_pin_hash,
        "software_target": config.software_target,
        "software_target_sha256": config.software_target_sha256,
    }


def parse_walk_in(document: object) -> Appointment:
    """The answer to POST /kiosk/walk-ins: the appointment the code opened, as a schedule has it."""
    return parse_appointment(Reader(document)._get("appointment", optional=False), "$.appointment")


MAX_WALK_IN_SERVICES = 100


def parse_walk_in_services(document: object) -> tuple[WalkInService, ...]:
    """The answer to GET /kiosk/walk-in-services: the services with a clerk available, as listed."""
    r = Reader(document)
    services = []
    for index, item in enumerate(r.array("services", max_items=MAX_WALK_IN_SERVICES)):
        s = Reader(item, f"$.services[{index}]")
        name = s.text("service", max_len=200)
        if not name.strip():
            raise MalformedResponse(f"{s.path}.service: empty")
        count = s.integer("clerks_available")
        if count < 1:
            raise MalformedResponse(f"{s.path}.clerks_available: expected at least 1")
        services.append(WalkInService(name, count))
    return tuple(services)


def parse_call_ticket(document: object) -> CallTicket:
    r = Reader(document)
    return CallTicket(call_id=r.text("call_id", max_len=128), version=r.integer("version"))


def parse_call_signal(document: object) -> CallSignal:
    r = Reader(document)
    answer = None
    if r.flag("has_answer"):
        a = r.child("answer")
        if a.text("type", max_len=16) != "answer":
            raise MalformedResponse(f"{a.path}.type: expected 'answer'")
        answer = SessionDescription(a.text("sdp", max_len=MAX_SDP), "answer")
    return CallSignal(
        version=r.integer("version"),
        call_id=r.optional_text("call_id", max_len=128),
        answer=answer,
        ended=r.flag("ended"),
        ended_by=r.optional_text("ended_by", max_len=32),
        reason=r.optional_text("reason", max_len=200),
    )


def parse_enrollment(document: object) -> Enrollment:
    r = Reader(document)
    return Enrollment(
        kiosk_id=r.text("kiosk_id", max_len=128), device_token=r.text("device_token", max_len=512)
    )
