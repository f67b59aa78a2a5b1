"""Time-limited TURN credentials in coturn's shared-secret scheme (`use-auth-secret`,
`static-auth-secret`; the "TURN REST API" of draft-uberti-behave-turn-rest):

    username = "<expiry, Unix seconds>:<who>"
    password = base64(HMAC-SHA1(secret, username))

coturn recomputes the password from the username and its own copy of the secret, and refuses the
username once its expiry has passed. So the secret stays on the central and on the TURN server: a
kiosk or a clerk's browser only ever holds a credential that dies on its own, and nothing needs to be
stored or revoked per kiosk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

TURN_URL = re.compile(r"^(stun|turn|turns):[^?\s]+(\?transport=(udp|tcp))?$")


@dataclass(frozen=True)
class TurnOptions:
    """The central's TURN server: its URLs and the secret it shares with coturn (never sent)."""

    urls: tuple[str, ...]
    secret: str = field(repr=False)  # repr=False: an options object in a log or traceback keeps it
    # A credential lives at least this long (the kiosk fetches its config every few minutes and right
    # before each call, so a call that starts soon is covered)…
    minimum_lifetime: timedelta = timedelta(hours=1)
    # …and in any case until the end of the party's appointment under way (or starting within the
    # minimum lifetime) plus this margin, because coturn checks the expiry on every allocation
    # refresh: a credential that expired mid-call would cut the relay ten minutes later.
    margin: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("TURN: at least one turn: or turns: URL is needed")
        for url in self.urls:
            if not TURN_URL.match(url) or url.startswith("stun:"):
                raise ValueError(
                    f"TURN: {url!r} is not a turn: or turns: URL (e.g. turn:turn.example.org:3478)"
                )
        if len(self.secret) < 16:
            raise ValueError("TURN: the shared secret must have at least 16 characters")


def turn_credentials(secret: str, expires_at: int, who: str) -> tuple[str, str]:
    """(username, password) for coturn's use-auth-secret, valid until `expires_at` (Unix seconds)."""
    # ':' separates the expiry from the rest; coturn reads the number before the first one.
    username = f"{expires_at}:{who.replace(':', '-')}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def credential_expiry(
    options: TurnOptions, now: datetime, appointments: Iterable[tuple[datetime, datetime]]
) -> int:
    """When a credential handed out `now` expires: the end of the appointment under way (or about to
    start) plus the margin, and never sooner than the minimum lifetime."""
    expiry = now + options.minimum_lifetime
    for start, end in appointments:
        if start <= now + options.minimum_lifetime and end >= now:
            expiry = max(expiry, end + options.margin)
    return int(expiry.timestamp())


def turn_ice_server(options: TurnOptions, who: str, expires_at: int) -> dict[str, Any]:
    """The RTCIceServer (as JSON) for one party: every TURN URL with one fresh credential."""
    username, password = turn_credentials(options.secret, expires_at, who)
    return {"urls": list(options.urls), "username": username, "credential": password}
