"""Staged updates, the central's releases: IT staff upload a real kiosk-client wheel, hostile uploads
are refused and store nothing, a kiosk's config carries its target's SHA-256, and a kiosk downloads its
own target only, checked against that hash."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kiosk_client.adapters.central_http import HttpCentral, enroll
from kiosk_client.core import releases
from kiosk_client.core.errors import AuthenticationFailed, CentralRejected, MalformedResponse
from kiosk_client.core.models import Heartbeat

from .conftest import Site
from .wheel_rig import build_wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("wheels")
    return {
        "2.0.0": build_wheel(out / "good", "2.0.0").read_bytes(),
        "other-name": build_wheel(out / "other", "2.0.0", name="kiosk-klient").read_bytes(),
        "2.1.0": build_wheel(out / "next", "2.1.0").read_bytes(),
    }


@pytest.fixture
async def kiosk(site: Site) -> AsyncIterator[HttpCentral]:
    central = HttpCentral(site.url, (await enroll(site.url, site.enrollment_code)).device_token)
    yield central
    await central.aclose()


def admin_client(site: Site, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=site.url, headers={"Authorization": f"Bearer {token or site.admin_token}"}, timeout=30
    )


def zip_with_metadata(metadata: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("kiosk_client-2.0.0.dist-info/METADATA", metadata)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_a_release_is_uploaded_listed_and_downloaded_by_the_kiosk_it_targets(
    site: Site, kiosk: HttpCentral, wheels: dict[str, bytes], tmp_path: Path
) -> None:
    wheel = wheels["2.0.0"]
    async with admin_client(site) as http:
        put = await http.put(
            "/api/v1/admin/software/2.0.0",
            content=wheel,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        sha = hashlib.sha256(wheel).hexdigest()
        assert put.json()["sha256"] == sha and put.json()["bytes"] == len(wheel)
        listed = (await http.get("/api/v1/admin/software")).json()["releases"]
        assert [(r["version"], r["sha256"]) for r in listed] == [("2.0.0", sha)]
        # A version names one wheel for good.
        again = await http.put("/api/v1/admin/software/2.0.0", content=wheels["2.1.0"])
        assert again.status_code == 409

        # No target: no hash; a target not uploaded: a target without a hash (nothing to install).
        config = await kiosk.fetch_config()
        assert (config.software_target, config.software_target_sha256) == (None, None)
        await http.put("/api/v1/admin/software-targets", json={"default": "2.5.0"})
        config = await kiosk.fetch_config()
        assert (config.software_target, config.software_target_sha256) == ("2.5.0", None)
        await http.put("/api/v1/admin/software-targets", json={"default": "2.0.0"})
    config = await kiosk.fetch_config()
    assert (config.software_target, config.software_target_sha256) == ("2.0.0", sha)

    spool = tmp_path / "spool"
    spool.mkdir()
    destination = spool / "kiosk.whl"
    await kiosk.download_software("2.0.0", sha, destination)
    assert destination.read_bytes() == wheel

    # A hash that does not match: refused, nothing left behind.
    wrong = spool / "wrong.whl"
    with pytest.raises(MalformedResponse, match="SHA-256"):
        await kiosk.download_software("2.0.0", "0" * 64, wrong)
    assert sorted(p.name for p in spool.iterdir()) == ["kiosk.whl"]

    # Another version than its own target (uploaded or not): refused.
    async with admin_client(site) as http:
        assert (await http.put("/api/v1/admin/software/2.1.0", content=wheels["2.1.0"])).status_code == 201
    with pytest.raises(CentralRejected) as refused:
        await kiosk.download_software("2.1.0", hashlib.sha256(wheels["2.1.0"]).hexdigest(), spool / "x.whl")
    assert (refused.value.status, refused.value.code) == (403, "not_your_target")
    assert sorted(p.name for p in spool.iterdir()) == ["kiosk.whl"]


async def test_hostile_uploads_are_refused_and_store_nothing(
    site: Site, kiosk: HttpCentral, wheels: dict[str, bytes]
) -> None:
    too_large = b"PK" + b"\0" * (releases.MAX_WHEEL_BYTES + 10)
    escaping = zip_with_metadata(
        "Name: kiosk-client\nVersion: 2.0.0\n", {"../../etc/cron.d/x": b"* * * * * root sh"}
    )
    cases = [
        ("2.0.0", wheels["other-name"], 400, "invalid_wheel"),  # another project
        ("2.0.1", wheels["2.0.0"], 400, "invalid_wheel"),  # its metadata says 2.0.0
        ("2.0.0", b"#!/bin/sh\nrm -rf /\n", 400, "invalid_wheel"),  # not a zip
        ("2.0.0", zip_with_metadata("Name: kiosk-client\n"), 400, "invalid_wheel"),  # no version
        ("2.0.0", escaping, 400, "invalid_wheel"),  # a member outside the wheel
        ("2.0.0", too_large, 413, "too_large"),
        ("2.0.0;rm", wheels["2.0.0"], 400, "invalid_field"),  # not a version
    ]
    async with admin_client(site) as http:
        for version, body, status, code in cases:
            answer = await http.put(f"/api/v1/admin/software/{version}", content=body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), version
    # Without the admin token (a wrong one, none).
    async with admin_client(site, "nope") as wrong, httpx.AsyncClient(base_url=site.url) as anonymous:
        for client in (wrong, anonymous):
            answer = await client.put("/api/v1/admin/software/2.0.0", content=wheels["2.0.0"])
            assert answer.status_code == 401
    async with admin_client(site) as http:
        assert (await http.get("/api/v1/admin/software")).json() == {"releases": []}
    with pytest.raises(AuthenticationFailed):  # a device token is not an admin token
        await kiosk._request("GET", "/admin/software")

    # The kiosk's config still carries no hash, and there is nothing to download.
    async with admin_client(site) as http:
        await http.put("/api/v1/admin/software-targets", json={"default": "2.0.0"})
    assert (await kiosk.fetch_config()).software_target_sha256 is None
    with pytest.raises(CentralRejected) as missing:
        await kiosk.download_software("2.0.0", "0" * 64, Path("/nonexistent/never-written.whl"))
    assert missing.value.status == 404


async def test_the_heartbeat_carries_the_update_and_the_fleet_view_shows_it(
    site: Site, kiosk: HttpCentral
) -> None:
    async with admin_client(site) as http:
        await http.put("/api/v1/admin/software-targets", json={"default": "2.0.0"})
        await kiosk.send_heartbeat(
            Heartbeat(
                "idle",
                None,
                {},
                "1.0.0",
                update={"state": "failed", "version": "2.0.0", "error": "rolled back"},
            )
        )
        view = (await http.get("/api/v1/admin/fleet")).json()
        row = next(k for k in view["kiosks"] if k["id"] == site.kiosk_id)
        assert row["update"] == {"state": "failed", "version": "2.0.0", "error": "rolled back"}
        assert row["software_target_missing"] is True  # 2.0.0 was never uploaded
        assert view["summary"]["update_failed"] == 1
        # A malformed update is refused, and what the kiosk said last stays.
        for bad in ({"state": "exploded", "version": "2.0.0"}, {"state": "installed"}, ["installed"]):
            answer = await kiosk._client.post(
                "/api/v1/kiosk/heartbeat", json={"state": "idle", "software_version": "1.0.0", "update": bad}
            )
            assert answer.status_code == 400, bad
        row = next(
            k for k in (await http.get("/api/v1/admin/fleet")).json()["kiosks"] if k["id"] == site.kiosk_id
        )
        assert row["update"]["state"] == "failed"
        # Without an update (nothing to install any more): cleared.
        await kiosk.send_heartbeat(Heartbeat("idle", None, {}, "2.0.0"))
        row = next(
            k for k in (await http.get("/api/v1/admin/fleet")).json()["kiosks"] if k["id"] == site.kiosk_id
        )
        assert row["update"] is None
