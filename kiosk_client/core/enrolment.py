"""What IT staff give a kiosk to enrol it: the code the central made, typed, or the enrolment QR code's
content — `<central URL>/enrol?code=<code>`, typed by a USB barcode reader as a keyboard would."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

from .errors import EnrolmentInputError

ENROL_PATH = "/enrol"
# The reference central's codes are 4 groups of 4 letters and digits; a council's central may make
# others, so only the characters and the length are checked here.
CODE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{2,62})[A-Za-z0-9]")


def enrolment_url(central_url: str, code: str) -> str:
    """What the enrolment QR code holds."""
    return f"{central_url.rstrip('/')}{ENROL_PATH}?{urlencode({'code': code})}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise EnrolmentInputError(f"the address {url!r} has an invalid port") from None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme)


def enrolment_code(text: str, central_url: str) -> str:
    """The code in `text` (a code, or an enrolment URL of this kiosk's central); clear errors otherwise."""
    text = text.strip()
    if not text:
        raise EnrolmentInputError("no enrolment code was given (nothing was typed or scanned)")
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise EnrolmentInputError(f"the QR code holds {text[:80]!r}, not an enrolment address")
        expected_path = urlsplit(central_url).path.rstrip("/") + ENROL_PATH
        if _origin(text) != _origin(central_url) or parts.path.rstrip("/") != expected_path:
            raise EnrolmentInputError(
                f"this QR code enrols at {parts.scheme}://{parts.netloc}{parts.path}, but this kiosk's "
                f"central is {central_url} (central.url in its configuration): use a code from that "
                "central, or correct the configuration"
            )
        values = parse_qs(parts.query, keep_blank_values=True).get("code", [])
        if len(values) != 1:
            raise EnrolmentInputError("the enrolment address has no code (…/enrol?code=…)")
        text = values[0].strip()
    if not CODE.fullmatch(text):
        raise EnrolmentInputError(
            "an enrolment code is 4 to 64 letters, digits and dashes (e.g. K7QW-3MZP-9XHT-AB2C); "
            f"got {len(text)} characters that are not one"
        )
    return text
