"""The root updater's own look at the central: which release it designates for this kiosk.

The updater (system/updater.py) must not take the version and hash to install from the kiosk user,
who may be compromised (it shows third-party web pages): it asks the central itself, with the
kiosk's device token (handed to kiosk-updater.service by the service manager, as to the session), over
the central's TLS. One small synchronous GET of /api/v1/kiosk/config: the updater is a one-shot
process with nothing else to do meanwhile.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import httpx

from ..core import bounded_json
from ..core.errors import (
    AuthenticationFailed,
    CentralRejected,
    CentralUnavailable,
    MalformedResponse,
)
from ..core.updates import SoftwareTarget
from ..core.wire import parse_remote_config

log = logging.getLogger(__name__)

CONFIG_PATH = "/api/v1/kiosk/config"
TIMEOUT_S = 15.0
MAX_CONFIG_BYTES = 256 * 1024


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_central_url(url: str) -> str:
    """The central's URL, if the updater may trust what it says: https, or plain http on loopback only
    (a reference central in tests and demos); ValueError otherwise. Over plain HTTP anyone on the path
    could designate what root installs."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return url.rstrip("/")
    raise ValueError(f"the updater trusts a central over https only (or http on loopback), not {url!r}")


class CentralSoftwareTarget:
    """core SoftwareTarget from GET /api/v1/kiosk/config; raises the core's CentralError tree."""

    def __init__(
        self,
        central_url: str,
        device_token: str,
        *,
        timeout_s: float = TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = check_central_url(central_url) + CONFIG_PATH
        self._token = device_token
        self._timeout = timeout_s
        self._transport = transport

    def fetch(self) -> SoftwareTarget:
        # trust_env=False: no proxy, netrc or CA bundle from the environment decides whom root believes;
        # TLS is verified against httpx's default bundle, as the kiosk's own HttpCentral does.
        with httpx.Client(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            transport=self._transport,
            headers={"User-Agent": "kiosk-client-updater", "Authorization": f"Bearer {self._token}"},
        ) as client:
            try:
                with client.stream("GET", self._url) as response:
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_CONFIG_BYTES:
                            raise MalformedResponse(
                                f"GET {CONFIG_PATH}: larger than {MAX_CONFIG_BYTES} bytes"
                            )
            except httpx.HTTPError as exc:
                raise CentralUnavailable(f"GET {CONFIG_PATH}: cannot reach the central ({exc})") from None
        if response.status_code in (401, 403):
            raise AuthenticationFailed(response.status_code, "unauthorized", "the device token was refused")
        if response.status_code >= 500:
            raise CentralUnavailable(f"GET {CONFIG_PATH}: the central failed ({response.status_code})")
        if response.status_code != 200:
            raise CentralRejected(response.status_code, "http_error", response.reason_phrase)
        try:
            config = parse_remote_config(bounded_json.loads(bytes(body)))
        except bounded_json.UnsafeJson as exc:
            raise MalformedResponse(f"GET {CONFIG_PATH}: the response is {exc}") from None
        return SoftwareTarget(config.software_target, config.software_target_sha256)
