"""Commands from IT staff to a kiosk, on the reference central over loopback HTTP, with the kiosk's
real adapter: posted, heard once in the heartbeat's answer, expired, results kept once, screenshots
checked, hostile input refused with nothing changed."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from kiosk_client.adapters.central_http import HttpCentral, enroll
from kiosk_client.adapters.fakes import tiny_png
from kiosk_client.central.commands import png_size, stamp
from kiosk_client.central.server import CentralThread
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.commands import CommandKind, CommandResult, Outcome
from kiosk_client.core.models import Heartbeat

from .conftest import Site

IDLE = Heartbeat("idle", None, {"camera": "ok"}, "1.0")


@dataclass
class Kiosk:
    token: str
    central: HttpCentral
    http: httpx.AsyncClient  # raw requests with the kiosk's token

    async def result(self, command_id: str, **kwargs: object) -> httpx.Response:
        return await self.http.post(f"/api/v1/kiosk/commands/{command_id}/result", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def kiosk(site: Site) -> AsyncIterator[Kiosk]:
    token = (await enroll(site.url, site.enrollment_code)).device_token
    central = HttpCentral(site.url, token, CentralClock(SystemClock()))
    async with httpx.AsyncClient(base_url=site.url, headers={"Authorization": f"Bearer {token}"}) as http:
        yield Kiosk(token, central, http)
    await central.aclose()


def state(site: Site, command_id: str) -> dict[str, object]:
    [command] = [c for c in site.admin.commands() if c["id"] == command_id]
    return command


def age(central: CentralThread, command_id: str) -> None:
    """The command's expiry, moved a second into the past (rather than waiting minutes for it)."""
    past = stamp(datetime.now(UTC) - timedelta(seconds=1))
    central.server.store._exec("UPDATE kiosk_commands SET expires_at=? WHERE id=?", past, command_id)


async def test_a_command_is_heard_once_in_the_heartbeat_answer_and_its_result_kept_once(
    site: Site, kiosk: Kiosk
) -> None:
    assert await kiosk.central.send_heartbeat(IDLE) == ()  # nothing pending: 204, as before commands
    posted = site.admin.send_command(site.kiosk_id, "reload")
    assert posted["state"] == "pending" and posted["kind"] == "reload"
    expires = datetime.fromisoformat(str(posted["expires_at"])) - datetime.fromisoformat(
        str(posted["created_at"])
    )
    assert expires == timedelta(minutes=5)  # the default
    [heard] = await kiosk.central.send_heartbeat(IDLE)
    assert heard.id == posted["id"] and heard.kind is CommandKind.RELOAD and 290 < heard.expires_in_s <= 300
    assert await kiosk.central.send_heartbeat(IDLE) == ()  # delivered once, never again
    assert state(site, heard.id)["state"] == "delivered"

    await kiosk.central.post_command_result(CommandResult(heard.id, Outcome.DONE))
    assert state(site, heard.id)["state"] == "done"
    again = await kiosk.result(heard.id, json={"outcome": "done"})  # its answer was lost: sent again
    assert again.status_code == 200 and again.json() == {"id": heard.id, "state": "done"}
    other = await kiosk.result(heard.id, json={"outcome": "failed", "reason": "late"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "result_already_posted"
    listed = state(site, heard.id)
    assert listed["state"] == "done" and listed["reason"] is None and listed["finished_at"]


async def test_an_expired_command_is_never_delivered_and_shows_expired(
    site: Site, kiosk: Kiosk, central: CentralThread
) -> None:
    stale = site.admin.send_command(site.kiosk_id, "restart", expires_in_seconds=60)
    fresh = site.admin.send_command(site.kiosk_id, "screenshot", expires_in_seconds=3600)
    age(central, str(stale["id"]))
    heard = await kiosk.central.send_heartbeat(IDLE)
    assert [c.id for c in heard] == [fresh["id"]] and heard[0].expires_in_s > 3500
    assert state(site, str(stale["id"]))["state"] == "expired"
    refused = await kiosk.result(str(stale["id"]), json={"outcome": "done"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_delivered"
    assert state(site, str(stale["id"]))["state"] == "expired"
    # Delivered, then past its expiry with no result: expired too, until the result comes.
    age(central, str(fresh["id"]))
    assert state(site, str(fresh["id"]))["state"] == "expired"


async def test_a_screenshot_is_checked_kept_and_served_to_it_staff(site: Site, kiosk: Kiosk) -> None:
    command = site.admin.send_command(site.kiosk_id, "screenshot")
    [heard] = await kiosk.central.send_heartbeat(IDLE)
    not_png = await kiosk.result(
        heard.id, content=b"GIF89a" + bytes(100), headers={"Content-Type": "image/png"}
    )
    assert not_png.status_code == 400 and not_png.json()["error"]["code"] == "invalid_png"
    broken = bytearray(tiny_png(30, 20))
    broken[-20] ^= 0xFF  # a flipped bit in the image data: its CRC no longer matches
    refused = await kiosk.result(heard.id, content=bytes(broken), headers={"Content-Type": "image/png"})
    assert refused.status_code == 400
    words = await kiosk.result(heard.id, json={"outcome": "done"})  # "taken" means the picture itself
    assert words.status_code == 400
    huge = await kiosk.result(
        heard.id, content=bytes(3 * 1024 * 1024 + 1), headers={"Content-Type": "image/png"}
    )
    assert huge.status_code == 413
    assert state(site, heard.id)["state"] == "delivered" and state(site, heard.id)["screenshot"] is None

    png = tiny_png(30, 20)
    await kiosk.central.post_command_result(CommandResult(heard.id, Outcome.DONE, screenshot=png))
    listed = state(site, str(command["id"]))
    assert listed["state"] == "done"
    assert listed["screenshot"] == {
        "url": f"/api/v1/admin/commands/{heard.id}/screenshot", "width": 30, "height": 20, "bytes": len(png),
    }  # fmt: skip
    assert site.admin.screenshot(heard.id) == png
    async with httpx.AsyncClient(base_url=site.url) as anyone:
        assert (await anyone.get(f"/api/v1/admin/commands/{heard.id}/screenshot")).status_code == 401
        wrong = {"Authorization": f"Bearer {kiosk.token}"}  # a kiosk's token is not IT staff's
        assert (
            await anyone.get(f"/api/v1/admin/commands/{heard.id}/screenshot", headers=wrong)
        ).status_code == 401


async def test_hostile_or_malformed_input_is_refused_and_changes_nothing(
    site: Site, kiosk: Kiosk, central: CentralThread
) -> None:
    admin = {"Authorization": f"Bearer {site.admin_token}"}
    path = f"/api/v1/admin/kiosks/{site.kiosk_id}/commands"
    async with httpx.AsyncClient(base_url=site.url, headers=admin) as http:
        for body in (
            {"kind": "format_disk"},
            {"kind": "reload", "expires_in_seconds": 3601},  # over an hour
            {"kind": "reload", "expires_in_seconds": 0},
            {"kind": "reload", "expires_in_seconds": True},
            {"kind": "reload", "expires_in_seconds": "300"},
            {"kind": "reload", "then": "restart"},
            {"kind": ["reload"]},
            {},
        ):
            answer = await http.post(path, json=body)
            assert answer.status_code == 400, body
        assert (await http.post(path, content=b'{"kind": "reload"')).status_code == 400
        assert (await http.post(path, content=b"[" * 5000)).status_code == 400
        nowhere = await http.post("/api/v1/admin/kiosks/kiosk_nope/commands", json={"kind": "reload"})
        assert nowhere.status_code == 404
        assert (await http.get("/api/v1/admin/commands", params={"kiosk_id": "x" * 65})).status_code == 400
    assert (
        await kiosk.http.post(path, json={"kind": "reload"})
    ).status_code == 401  # a kiosk is not IT staff
    assert site.admin.commands() == []

    command = site.admin.send_command(site.kiosk_id, "screenshot")
    for body in (
        {"outcome": "exploded"},
        {"outcome": "refused", "reason": "x" * 201},
        {"outcome": "refused", "reason": "line\nbreak"},
        {"outcome": "refused", "reason": 7},
    ):
        assert (await kiosk.result(str(command["id"]), json=body)).status_code == 400, body
    assert (await kiosk.result("cmd_unknown", json={"outcome": "done"})).status_code == 404
    [heard] = await kiosk.central.send_heartbeat(IDLE)
    # Another kiosk cannot answer for this one.
    other_id = site.admin.create_kiosk("Borne 2", "Ailleurs")
    other_token = (await enroll(site.url, site.admin.enrollment_code(other_id))).device_token
    async with httpx.AsyncClient(
        base_url=site.url, headers={"Authorization": f"Bearer {other_token}"}
    ) as other:
        stolen = await other.post(f"/api/v1/kiosk/commands/{heard.id}/result", json={"outcome": "refused"})
        assert stolen.status_code == 404
    assert state(site, heard.id)["state"] == "delivered"
    reload = site.admin.send_command(site.kiosk_id, "reload")
    [reload_heard] = await kiosk.central.send_heartbeat(IDLE)
    picture = await kiosk.result(
        reload_heard.id, content=tiny_png(4, 4), headers={"Content-Type": "image/png"}
    )
    assert picture.status_code == 400  # only a screenshot's result is a picture
    assert state(site, str(reload["id"]))["state"] == "delivered"
    for _ in range(10):
        site.admin.send_command(site.kiosk_id, "restart")
    with pytest.raises(httpx.HTTPStatusError) as flood:
        site.admin.send_command(site.kiosk_id, "restart")
    assert flood.value.response.status_code == 409  # a stuck kiosk does not pile up restarts


async def test_the_kiosk_ignores_an_unreadable_command_list(site: Site) -> None:
    """A heartbeat answer whose list the kiosk cannot read runs nothing, and the kiosk carries on."""
    answers = iter(
        [
            {"commands": [{"id": "c1", "kind": "reload"}]},  # no expiry
            {"commands": [{"id": "c 1", "kind": "reload", "expires_in_seconds": 60}]},
            {"commands": [{"id": "c1", "kind": "reload", "expires_in_seconds": 7200}]},
            {"commands": "reload"},
            {"commands": [{"id": "c1", "kind": "reload", "expires_in_seconds": 60}] * 21},
            {"commands": [{"id": "c1", "kind": "screenshot", "expires_in_seconds": 60, "extra": 1}]},
            {"commands": [{"id": "c2", "kind": "collect_logs", "expires_in_seconds": 60}]},
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(answers))

    central = HttpCentral("http://central.invalid", "token", transport=httpx.MockTransport(handler))
    try:
        for _ in range(5):
            assert await central.send_heartbeat(IDLE) == ()
        [good] = await central.send_heartbeat(IDLE)  # unknown fields are ignored
        assert good.kind is CommandKind.SCREENSHOT and good.expires_in_s == 60
        [newer] = await central.send_heartbeat(IDLE)  # a newer central's kind: kept, to be refused
        assert newer.kind is None and newer.name == "collect_logs"
    finally:
        await central.aclose()


def test_png_checks() -> None:
    assert png_size(tiny_png(7, 3)) == (7, 3)
    good = tiny_png(7, 3)
    for bad in (good[:-1], good + b"x", good[:8], b"", good.replace(b"IHDR", b"IHDX")):
        with pytest.raises(ValueError):
            png_size(bad)
    # A header that promises more pixels than the data holds (or a decompression bomb the other way).
    header = struct.pack(">IIBBBBB", 8000, 8000, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 100)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    lying = good[:8] + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    with pytest.raises(ValueError, match="does not match"):
        png_size(lying)


def test_old_commands_are_forgotten_but_kept_screenshots_stay(site: Site, central: CentralThread) -> None:
    store = central.server.store
    old = site.admin.send_command(site.kiosk_id, "reload")
    pictured = site.admin.send_command(site.kiosk_id, "screenshot")
    long_ago = stamp(datetime.now(UTC) - timedelta(days=31))
    for command in (old, pictured):
        store._exec("UPDATE kiosk_commands SET created_at=? WHERE id=?", long_ago, command["id"])
    store.store_screenshot(str(pictured["id"]), site.kiosk_id, "iVBORw0KGgo=", (1, 1), 8, long_ago)
    new = site.admin.send_command(site.kiosk_id, "restart")
    assert [c["id"] for c in site.admin.commands()] == [new["id"], pictured["id"]]
