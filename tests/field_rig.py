"""A rural link between a kiosk and the reference central, for tests and benches that need one.

    with field_rig("adsl", tmp_path) as rig:          # or the `field` fixture (profile by indirect param)
        rig.link.run_in("kiosk", [...])                # a process on the kiosk's side of the link
        rig.http().get(f"{rig.central_url}/api/v1/health")   # from the kiosk's namespace

The reference central runs in the world namespace, in a process of its own (like the demo's and the
benches'), listening on the world side's address: `central_url` is the URL the kiosk side reaches it
by, through the emulated link. Nothing of the central is reachable from the root namespace, so the
admin calls a test makes (kiosks, clerks, appointments) cross the link too: `rig.admin()`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.tools.central_process import CentralProcess
from kiosk_client.tools.field_setup import central_beyond
from kiosk_client.tools.link_emulator import FieldLink, NetnsTransport, Profile, Side

ROOT_REASON = "field links need root: network namespaces, veth pairs and AF_PACKET sockets"


@dataclass
class FieldRig:
    link: FieldLink
    central: CentralProcess
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def central_url(self) -> str:
        """The central's URL as seen from the kiosk namespace."""
        return self.central.url

    @property
    def admin_token(self) -> str:
        return self.central.admin_token

    def http(self, side: Side = "kiosk", **kwargs: Any) -> httpx.Client:
        """A client whose connections start in `side`'s namespace; closed with the rig."""
        client = self.link.http_client(side, **kwargs)
        self._clients.append(client)
        return client

    def admin(self) -> CentralAdmin:
        """The central's admin API, from the kiosk side (across the link)."""
        return CentralAdmin(self.central_url, self.admin_token, NetnsTransport(self.link.kiosk_ns))

    def close(self) -> None:
        for client in self._clients:
            client.close()


@contextlib.contextmanager
def field_rig(profile: Profile | str, tmp_path: Path) -> Iterator[FieldRig]:
    """A field link with the reference central in its world namespace; everything removed after."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip(ROOT_REASON)
    with (
        FieldLink(profile) as link,
        central_beyond(link, tmp_path / "central.db") as central,
    ):
        rig = FieldRig(link, central)
        try:
            yield rig
        finally:
            rig.close()


@pytest.fixture
def field(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FieldRig]:
    """`field_rig` as a fixture: the profile comes from an indirect parameter (default adsl)."""
    with field_rig(getattr(request, "param", "adsl"), tmp_path) as rig:
        yield rig


class TcpSink:
    """A TCP server in one namespace that reads each connection to its end and answers with the byte
    count: the far end of an upload (the central takes bodies of 512 KiB at most)."""

    def __init__(self, link: FieldLink, side: Side = "world", port: int = 9100) -> None:
        with link.inside(side):
            self._server = socket.create_server((link.ip(side), port))
        self.address = (link.ip(side), port)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._server.accept()
                with connection:
                    total = 0
                    while chunk := connection.recv(65536):
                        total += len(chunk)
                    connection.sendall(f"{total}\n".encode())

    def close(self) -> None:
        self._server.close()
        self._thread.join(2)


def upload(link: FieldLink, to: tuple[str, int], size: int, side: Side = "kiosk") -> int:
    """Send `size` bytes over TCP from `side` to `to`; the count the far end acknowledged."""
    with link.inside(side):
        sock = socket.create_connection(to, timeout=60)
    with sock:
        sock.sendall(b"\x5a" * size)
        sock.shutdown(socket.SHUT_WR)
        return int(sock.makefile().readline())
