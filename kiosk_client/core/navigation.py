"""Where the form view may go: the appointment's allowed origins plus a default list from config."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str = ""


def origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" if port in (None, default) else f"{parts.scheme}://{host}:{port}"


def web_origin(value: str) -> str | None:
    """The origin `value` names, as a browser writes it in an Origin header, if it is one (scheme,
    host, port: no path beyond "/", no query, fragment or user)."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username is not None:
        return None
    return origin_of(value.strip())


class NavigationPolicy:
    def __init__(self, origins: tuple[str, ...] | list[str]) -> None:
        self.origins = frozenset(o for o in (origin_of(x) for x in origins) if o)

    def check(self, url: str) -> Verdict:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https"):
            # file:, javascript:, data:, blob:, chrome:, view-source:… never leave the allowed sites.
            return Verdict(False, f"{scheme or 'relative'} URLs are not allowed")
        origin = origin_of(url)
        if origin is None:
            return Verdict(False, "not a valid web address")
        if origin not in self.origins:
            return Verdict(False, f"{origin} is not an allowed site for this appointment")
        return Verdict(True)
