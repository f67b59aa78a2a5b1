"""The reference central's own contract: JSON errors, auth, validation, long-poll limits."""

from __future__ import annotations

import httpx
import pytest

from kiosk_client.central.server import CentralThread

from .conftest import Site


def test_errors_are_json_with_a_code(central: CentralThread) -> None:
    with httpx.Client(base_url=central.url) as client:
        missing = client.get("/api/v1/nothing")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        unauth = client.get("/api/v1/kiosk/schedule")
        assert unauth.status_code == 401 and unauth.json()["error"]["code"] == "unauthorized"
        bad = client.post(
            "/api/v1/enrollment", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
        huge = client.post("/api/v1/enrollment", content=b"x" * 600_000)
        assert huge.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        {"type": "answer", "sdp": "v=0"},
        {"type": "offer", "sdp": "not sdp"},
        {"type": "offer", "sdp": 42},
        {"type": "offer"},
    ],
)
def test_offers_are_validated(site: Site, body: dict[str, object]) -> None:
    with httpx.Client(base_url=site.url) as client:
        token = client.post("/api/v1/enrollment", json={"code": site.enrollment_code}).json()["device_token"]
        appointment_id = site.appointment_in(60)["id"]
        response = client.put(
            f"/api/v1/appointments/{appointment_id}/offer",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_field"


def test_a_clerk_sees_only_their_appointments(site: Site) -> None:
    mine = site.appointment_in(60)
    other = site.admin.create_clerk("M. Durand", "CPAM")
    with httpx.Client(base_url=site.url) as client:
        listing = client.get(
            "/api/v1/clerk/appointments", headers={"Authorization": f"Bearer {other.token}"}
        ).json()
        assert listing["appointments"] == []
        peek = client.get(
            f"/api/v1/appointments/{mine['id']}/call", headers={"Authorization": f"Bearer {other.token}"}
        )
        assert peek.status_code == 404


def test_admin_calls_need_the_admin_token(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        response = client.post(
            "/api/v1/admin/kiosks",
            json={"name": "x", "site_name": "y"},
            headers={"Authorization": f"Bearer {site.clerk.token}"},
        )
        assert response.status_code == 401


def test_the_openapi_document_and_console_are_served(central: CentralThread) -> None:
    with httpx.Client(base_url=central.url) as client:
        spec = client.get("/api/v1/openapi.yaml")
        assert spec.status_code == 200 and "openapi: 3.1" in spec.text
        console = client.get("/clerk")
        assert console.status_code == 200 and "Console conseiller" in console.text
        assert client.get("/clerk/static/clerk.js").status_code == 200


def test_the_clerk_gets_the_same_ice_servers_as_the_kiosks(site: Site) -> None:
    servers = [{"urls": ["turn:turn.example.org:443?transport=tcp"], "username": "u", "credential": "c"}]
    site.admin.configure(ice_servers=servers)
    with httpx.Client(base_url=site.url) as client:
        response = client.get("/api/v1/clerk/config", headers={"Authorization": f"Bearer {site.clerk.token}"})
        assert response.status_code == 200 and response.json() == {"ice_servers": servers}
        assert client.get("/api/v1/clerk/config").status_code == 401


@pytest.mark.parametrize(
    "servers",
    ["turn:x", [{"urls": "turn:x"}], [{"urls": ["http://x"]}], [{"urls": ["turn:x"], "credential": 3}], [3]],
)
def test_bad_ice_servers_are_refused(site: Site, servers: object) -> None:
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {site.admin_token}"}) as client:
        response = client.put("/api/v1/admin/config", json={"ice_servers": servers})
        assert response.status_code == 400 and "ice_servers" in response.json()["error"]["message"]
