"""A small admin client for the reference central (demo, tests, benchmarks, IT staff scripts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx


@dataclass(frozen=True)
class Clerk:
    clerk_id: str
    token: str
    display_name: str


class CentralAdmin:
    def __init__(self, url: str, admin_token: str, transport: httpx.BaseTransport | None = None) -> None:
        # `transport`: e.g. a field link's, whose connections start in the kiosk's network namespace.
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        response = self._client.post(path, json=data or {})
        response.raise_for_status()
        return response.json()

    def create_kiosk(self, name: str, site_name: str) -> str:
        return str(self._post("/api/v1/admin/kiosks", {"name": name, "site_name": site_name})["kiosk_id"])

    def enrollment_code(self, kiosk_id: str) -> str:
        return str(self._post(f"/api/v1/admin/kiosks/{kiosk_id}/enrollment-codes")["code"])

    def enrollment_qr(self, kiosk_id: str, central_url: str | None = None) -> dict[str, str]:
        """A code with its enrolment address and QR code (an SVG), for the kiosk's USB reader."""
        body = {"central_url": central_url} if central_url else None
        return dict(self._post(f"/api/v1/admin/kiosks/{kiosk_id}/enrollment-codes", body))

    def create_clerk(self, display_name: str, service: str) -> Clerk:
        data = self._post("/api/v1/admin/clerks", {"display_name": display_name, "service": service})
        return Clerk(data["clerk_id"], data["token"], display_name)

    def create_appointment(
        self,
        kiosk_id: str,
        clerk: Clerk,
        service: str,
        start: datetime,
        duration: timedelta = timedelta(minutes=20),
        allowed_origins: list[str] | None = None,
        start_url: str | None = None,
        citizen_name: str | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._post(
            "/api/v1/admin/appointments",
            {
                "kiosk_id": kiosk_id,
                "clerk_id": clerk.clerk_id,
                "service": service,
                "start": start.isoformat(),
                "end": (start + duration).isoformat(),
                "allowed_origins": allowed_origins or [],
                "start_url": start_url,
                **({"citizen_name": citizen_name} if citizen_name is not None else {}),
            },
        )
        return result

    def configure(self, **config: Any) -> None:
        """Any key of PUT /api/v1/admin/config, e.g. `poll_interval_seconds=5`, `staff_pin="1234"`
        (kept and served as its hash only), `staff_pin=None` (no PIN: the staff panel stays shut)."""
        self._client.put("/api/v1/admin/config", json=config).raise_for_status()

    def kiosks(self) -> list[dict[str, Any]]:
        response = self._client.get("/api/v1/admin/kiosks")
        response.raise_for_status()
        return list(response.json()["kiosks"])

    def session_reports(self) -> list[dict[str, Any]]:
        response = self._client.get("/api/v1/admin/session-reports")
        response.raise_for_status()
        return list(response.json()["reports"])

    def expired_documents(self) -> list[dict[str, Any]]:
        response = self._client.get("/api/v1/admin/expired-documents")
        response.raise_for_status()
        return list(response.json()["documents"])

    def usage(self, fmt: str = "json", **period: str) -> Any:
        """GET /api/v1/admin/usage: the figures per site and service (`from_`/`to`: days, YYYY-MM-DD);
        the JSON document, or the CSV text."""
        params = {"format": fmt, **{key.rstrip("_"): value for key, value in period.items()}}
        response = self._client.get("/api/v1/admin/usage", params=params)
        response.raise_for_status()
        return response.json() if fmt == "json" else response.text

    def send_command(
        self, kiosk_id: str, kind: str, expires_in_seconds: float | None = None
    ) -> dict[str, Any]:
        """IT staff's command to a kiosk (reload, restart, screenshot); the command as listed."""
        body: dict[str, Any] = {"kind": kind}
        if expires_in_seconds is not None:
            body["expires_in_seconds"] = expires_in_seconds
        return dict(self._post(f"/api/v1/admin/kiosks/{kiosk_id}/commands", body))

    def commands(self, kiosk_id: str | None = None) -> list[dict[str, Any]]:
        """The latest commands, newest first, with their states and results."""
        response = self._client.get(
            "/api/v1/admin/commands", params={"kiosk_id": kiosk_id} if kiosk_id else {}
        )
        response.raise_for_status()
        return list(response.json()["commands"])

    def screenshot(self, command_id: str) -> bytes:
        response = self._client.get(f"/api/v1/admin/commands/{command_id}/screenshot")
        response.raise_for_status()
        return response.content

    def upload_release(self, version: str, wheel: bytes) -> dict[str, Any]:
        """Staged updates: a kiosk-client wheel as release `version`; the release as listed."""
        response = self._client.put(
            f"/api/v1/admin/software/{version}",
            content=wheel,
            headers={"Content-Type": "application/octet-stream"},
            timeout=120,
        )
        response.raise_for_status()
        return dict(response.json())

    def set_software_targets(
        self,
        default: str | None = None,
        canary: dict[str, Any] | None = None,
        pins: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The whole plan (what is left out is cleared): the fleet's default, the canary group, pins."""
        response = self._client.put(
            "/api/v1/admin/software-targets", json={"default": default, "canary": canary, "pins": pins or {}}
        )
        response.raise_for_status()
        return dict(response.json())

    def fleet(self) -> dict[str, Any]:
        response = self._client.get("/api/v1/admin/fleet")
        response.raise_for_status()
        return dict(response.json())
