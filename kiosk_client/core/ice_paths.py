"""The order in which the kiosk tries its network paths to the clerk.

aiortc gives each connection at most one STUN and one TURN server (the first of each it is given), so
the kiosk cannot hand it "TURN over UDP, TCP and TLS" at once as a browser does. Instead each
connection attempt gets the STUN server and one TURN URL; when an attempt cannot connect, the next
one takes the next TURN URL:

    1. host candidates (always gathered: direct is tried first by ICE's priorities) + TURN over UDP
    2. … + TURN over TCP
    3. … + TURN over TLS (turns:, on 443 in locked-down networks) — the last resort

UDP first because it is what media wants (no head-of-line blocking, no TCP under SRTP); TCP when a
firewall drops UDP; TLS last because it is the slowest and is only needed where only HTTPS-looking
traffic leaves the building. Without TURN there is one path: the configured STUN server (if any) and
the host candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from .models import IceServer

TRANSPORT_ORDER = ("udp", "tcp", "tls")


@dataclass(frozen=True, slots=True)
class IcePath:
    servers: tuple[IceServer, ...]  # what one connection is given: at most one STUN and one TURN URL
    turn: str | None = None  # "udp", "tcp" or "tls": how this path reaches its TURN server

    def describe(self) -> str:
        return f"TURN over {self.turn.upper()}" if self.turn else "direct (no TURN)"


def turn_transport(url: str) -> str | None:
    """How a TURN URL reaches its server ("udp", "tcp", "tls"), or None for anything else."""
    scheme, _, rest = url.partition(":")
    if scheme not in ("turn", "turns"):
        return None
    transport = parse_qs(rest.partition("?")[2]).get("transport", [""])[0].lower()
    if scheme == "turns":
        return "tls" if transport in ("", "tcp") else None  # TLS over UDP (DTLS) is not TURN's turns:
    return (transport or "udp") if transport in ("", "udp", "tcp") else None


def ice_paths(servers: tuple[IceServer, ...]) -> tuple[IcePath, ...]:
    """The paths to try, in order (see the module's docstring); never empty."""
    stun = [
        IceServer((url,), s.username, s.credential)
        for s in servers
        for url in s.urls
        if url.startswith("stun:")
    ]
    turns = [
        (TRANSPORT_ORDER.index(transport), IceServer((url,), s.username, s.credential), transport)
        for s in servers
        for url in s.urls
        if (transport := turn_transport(url)) is not None
    ]
    turns.sort(key=lambda item: item[0])  # stable: the central's order among URLs of one transport
    first_stun = tuple(stun[:1])
    if not turns:
        return (IcePath(first_stun),)
    return tuple(IcePath((*first_stun, server), transport) for _, server, transport in turns)
