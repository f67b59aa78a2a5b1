"""Hostile bodies on every endpoint of the reference central that reads JSON: each is refused with a
JSON 4xx (400, or 413 when too large), never a 500 — over loopback HTTP, against the real central."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.central.guard import CentralOptions, FailureWindow, RateLimit
from kiosk_client.central.server import CentralThread

# This file sends hundreds of bodies to the enrolment endpoint: lift its guessing limits here
# (test_central_hardening_limits.py checks them).
UNLIMITED = RateLimit(100_000, 100_000)
OPTIONS = CentralOptions(
    enrolment_per_address=UNLIMITED,
    enrolment_failures=UNLIMITED,
    token_failures_per_address=UNLIMITED,
    walk_in_failures_per_kiosk=FailureWindow(100_000, 1.0),
)
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@dataclass
class Endpoint:
    method: str
    path: str
    token: str | None
    body: dict[str, Any]  # a well-formed body (it may still be refused, e.g. an unknown code)
    fields: dict[str, str] = field(default_factory=dict)  # name -> "str", "str?", "strmap", "list", "number"

    def send(self, client: httpx.Client, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return client.request(self.method, self.path, headers=headers, **kwargs)


@dataclass
class World:
    url: str
    endpoints: list[Endpoint]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with CentralThread(tmp_path_factory.mktemp("central") / "c.db", options=OPTIONS) as central:
        admin = CentralAdmin(central.url, central.admin_token)
        kiosk_id = admin.create_kiosk("Borne 1", "France Services de Test")
        clerk = admin.create_clerk("Mme Martin", "CAF")
        appointment = admin.create_appointment(kiosk_id, clerk, "CAF", datetime.now(UTC))["id"]
        code = admin.enrollment_code(kiosk_id)
        with httpx.Client(base_url=central.url) as client:
            device = client.post("/api/v1/enrollment", json={"code": code}).json()["device_token"]
            offer = client.put(
                f"/api/v1/appointments/{appointment}/offer",
                json={"type": "offer", "sdp": SDP},
                headers={"Authorization": f"Bearer {device}"},
            )
            call_id = offer.json()["call_id"]
        command = admin.send_command(kiosk_id, "screenshot")["id"]  # a kiosk's result needs a command
        admin.close()
        v1, a = "/api/v1", f"/api/v1/appointments/{appointment}"
        start = datetime.now(UTC) + timedelta(hours=1)
        endpoints = [
            Endpoint("POST", f"{v1}/enrollment", None, {"code": "AAAA-BBBB-CCCC-DDDD"}, {"code": "str"}),
            Endpoint(
                "POST",
                f"{v1}/kiosk/heartbeat",
                device,
                {
                    "state": "idle",
                    "appointment_id": None,
                    "devices": {"camera": "ok"},
                    "software_version": "1",
                },
                {"state": "str", "appointment_id": "str?", "devices": "strmap", "software_version": "str?"},
            ),
            Endpoint(
                "POST",
                f"{v1}/kiosk/documents/expired",
                device,
                {"document_id": "0" * 32, "sha256": "0" * 64, "reason": "retention", "appointment_id": None},
                {"document_id": "str", "sha256": "str?", "reason": "str", "appointment_id": "str?"},
            ),
            Endpoint("POST", f"{v1}/kiosk/walk-ins", device, {"code": "000000"}, {"code": "str"}),
            Endpoint("POST", f"{v1}/clerk/walk-in-codes", clerk.token, {}),
            Endpoint(
                "PUT", f"{a}/offer", device, {"type": "offer", "sdp": SDP}, {"type": "str", "sdp": "str"}
            ),
            Endpoint(
                "PUT",
                f"{a}/answer",
                clerk.token,
                {"type": "answer", "sdp": SDP, "call_id": call_id},
                {"type": "str", "sdp": "str", "call_id": "str"},
            ),
            Endpoint(
                "POST",
                f"{a}/hangup",
                clerk.token,
                {"call_id": call_id, "reason": "done"},
                {"call_id": "str", "reason": "str?"},
            ),
            Endpoint(
                "POST",
                f"{v1}/admin/kiosks",
                central.admin_token,
                {"name": "B", "site_name": "S"},
                {"name": "str", "site_name": "str"},
            ),
            Endpoint(
                "POST",
                f"{v1}/admin/clerks",
                central.admin_token,
                {"display_name": "D", "service": "S"},
                {"display_name": "str", "service": "str"},
            ),
            Endpoint(
                "POST",
                f"{v1}/admin/appointments",
                central.admin_token,
                {
                    "kiosk_id": kiosk_id,
                    "clerk_id": clerk.clerk_id,
                    "service": "CAF",
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=20)).isoformat(),
                    "allowed_origins": [],
                    "start_url": None,
                },
                {
                    "kiosk_id": "str",
                    "clerk_id": "str",
                    "service": "str",
                    "start": "str",
                    "end": "str",
                    "allowed_origins": "list",
                    "start_url": "str?",
                },
            ),
            Endpoint(
                "PUT",
                f"{v1}/admin/config",
                central.admin_token,
                {"poll_interval_seconds": 15, "ice_servers": [], "staff_pin": None},
                {
                    "poll_interval_seconds": "number",
                    "join_before_seconds": "number",
                    "ice_servers": "list",
                    "staff_pin": "str?",
                },
            ),
            Endpoint(
                "POST",
                f"{v1}/admin/kiosks/{kiosk_id}/commands",
                central.admin_token,
                {"kind": "reload", "expires_in_seconds": 300},
                {"kind": "str", "expires_in_seconds": "number"},
            ),
            Endpoint(
                "POST",
                f"{v1}/kiosk/commands/{command}/result",
                device,
                {"outcome": "refused", "reason": "in_session"},
                {"outcome": "str", "reason": "str?"},
            ),
            Endpoint(
                "PUT",
                f"{v1}/admin/software-targets",
                central.admin_token,
                {"default": "1.4.0", "pins": {}},
                {"default": "str?", "pins": "strmap"},
            ),
        ]
        yield World(central.url, endpoints)


def assert_json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (
        response.request.url.path,
        response.status_code,
        response.text[:300],
    )
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]


DEPTH = 100_000
MALFORMED: dict[str, bytes] = {
    "nested arrays": b"[" * DEPTH + b"]" * DEPTH,
    "nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "nested in a field": b'{"code":' + b"[" * DEPTH + b"]" * DEPTH + b"}",
    "100,000-digit integer": b'{"code":' + b"7" * 100_000 + b"}",
    "100,000-digit number at top level": b"9" * 100_000,
    "100,000-digit fraction": b'{"code":0.' + b"3" * 100_000 + b"}",
    "overflowing exponent": b'{"code":1e999}',
    "NaN": b'{"code":NaN}',
    "Infinity": b'{"code":-Infinity}',
    "invalid UTF-8": b'{"code":"\xff\xfe\xc3"}',
    "UTF-16": '{"code":"x"}'.encode("utf-16"),
    "lone surrogate escape": b'{"code":"\\ud800","name":"\\udfff"}',
    "not JSON": b"{not json",
    "truncated": b'{"code":',
    "empty": b"",
    "array": b"[]",
    "string": b'"code"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_bodies_get_a_json_400_on_every_endpoint(world: World, name: str) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as client:
        for endpoint in world.endpoints:
            response = endpoint.send(
                client, content=MALFORMED[name], headers={"Content-Type": "application/json"}
            )
            assert_json_error(response, 400)


def test_an_undecodable_content_encoding_gets_a_json_400(world: World) -> None:
    for endpoint in world.endpoints:
        # A client of its own each time: aiohttp closes the connection after such a body.
        with httpx.Client(base_url=world.url) as client:
            response = endpoint.send(client, content=b"not gzip", headers={"Content-Encoding": "gzip"})
            assert_json_error(response, 400)


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_bodies_get_a_json_413_on_every_endpoint(world: World, chunked: bool) -> None:
    big = b'{"code":"' + b"x" * 600_000 + b'"}'
    with httpx.Client(base_url=world.url) as client:
        for endpoint in world.endpoints:
            content: Any = iter([big[:1000], big[1000:]]) if chunked else big
            assert_json_error(endpoint.send(client, content=content), 413)


def test_a_compressed_body_is_bounded_once_inflated(world: World) -> None:
    bomb = gzip.compress(b'{"code":"' + b"x" * 20_000_000 + b'"}')  # ~20 KB on the wire
    with httpx.Client(base_url=world.url) as client:
        for endpoint in world.endpoints:
            response = endpoint.send(client, content=bomb, headers={"Content-Encoding": "gzip"})
            assert_json_error(response, 413)


WRONG: dict[str, list[Any]] = {
    "str": [1, 1.5, True, [], {}, ["x"], {"a": "b"}, "x" * 300_000],
    "str?": [1, 1.5, True, [], {}, ["x"], {"a": "b"}, "x" * 300_000],
    "strmap": [1, 0, False, True, "x", [], ["a"], {"a": 1}, {"a": None}, {"a": ["b"]}],
    "list": [1, 0, False, "x", {}, {"a": 1}],
    "number": ["1", True, None, [], {}, -1],
}


def test_wrong_json_types_get_a_json_400_on_every_endpoint(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as client:
        for endpoint in world.endpoints:
            for name, kind in endpoint.fields.items():
                for value in WRONG[kind]:
                    response = endpoint.send(client, json={**endpoint.body, name: value})
                    assert response.status_code in (400, 413), (endpoint.path, name, value)
                    assert_json_error(response, response.status_code)


def test_the_declared_charset_is_ignored_json_is_utf8(world: World) -> None:
    [create_kiosk] = [e for e in world.endpoints if e.path.endswith("/admin/kiosks")]
    with httpx.Client(base_url=world.url) as client:
        for charset in ("no-such-charset", "latin-1", "utf-16"):
            response = create_kiosk.send(
                client,
                content='{"name": "Borne é", "site_name": "Mairie"}'.encode(),
                headers={"Content-Type": f"application/json; charset={charset}"},
            )
            assert response.status_code == 201, (charset, response.text[:300])
        names = [k["name"] for k in client.get(
            "/api/v1/admin/kiosks", headers={"Authorization": f"Bearer {create_kiosk.token}"}
        ).json()["kiosks"]]  # fmt: skip
        assert names.count("Borne é") == 3


def test_origins_that_do_not_parse_are_refused(world: World) -> None:
    [create] = [e for e in world.endpoints if e.path.endswith("/admin/appointments")]
    with httpx.Client(base_url=world.url) as client:
        for bad in ("http://[::1", "http://x:99999999999", "https://"):
            response = create.send(client, json={**create.body, "allowed_origins": [bad]})
            assert_json_error(response, 400)


# Bytes that are not UTF-8 reach the handler as surrogates, which hashing a token cannot encode.
@pytest.mark.parametrize("header", [b"Bearer \xff\xfe", b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer abc\xe9"])
def test_tokens_that_are_not_printable_ascii_get_a_json_401(world: World, header: bytes) -> None:
    paths = ["/api/v1/kiosk/schedule", "/api/v1/clerk/appointments", "/api/v1/admin/kiosks"]
    paths.append(
        next(e.path for e in world.endpoints if e.path.endswith("/answer")).replace("answer", "call")
    )
    with httpx.Client(base_url=world.url) as client:
        for path in paths:
            assert_json_error(client.get(path, headers={"Authorization": header}), 401)


def test_well_formed_bodies_still_work(world: World) -> None:
    """The bounds refuse nothing a real client sends (the kiosk config is the deepest body)."""
    [config] = [e for e in world.endpoints if e.path.endswith("/admin/config")]
    servers = [
        {"urls": ["stun:stun.example.org:3478"]},
        {"urls": ["turn:t.example.org:443"], "username": "u", "credential": "c"},
    ]
    with httpx.Client(base_url=world.url) as client:
        response = config.send(client, json={"ice_servers": servers, "poll_interval_seconds": 12.5})
        assert response.status_code == 200 and response.json()["ice_servers"] == servers
        [heartbeat] = [e for e in world.endpoints if e.path.endswith("/heartbeat")]
        [result] = [e for e in world.endpoints if e.path.endswith("/result")]
        # The heartbeat's answer carries the command the world left (none of the refused bodies took it).
        delivered = heartbeat.send(client, json=heartbeat.body)
        assert delivered.status_code == 200
        assert [c["id"] for c in delivered.json()["commands"]] == [result.path.split("/")[-2]]
        assert heartbeat.send(client, json=heartbeat.body).status_code == 204
        kept = result.send(client, json=result.body)
        assert kept.status_code == 200 and kept.json()["state"] == "refused"
