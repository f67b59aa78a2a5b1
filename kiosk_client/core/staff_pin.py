"""The staff PIN's hash, as the central hands it to its kiosks: `pbkdf2_sha256$ITERATIONS$SALT$HASH`
(salt and hash in unpadded URL-safe base64). The central keeps and sends only this; the kiosk checks
a typed PIN against it. A PIN of a few digits cannot resist an offline search by someone who copied
the kiosk's disk: what protects it is that the panel only opens on the kiosk itself, after a gesture,
with a few attempts before a lock-out (core/staff_access.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "pbkdf2_sha256"
ITERATIONS = 200_000
MIN_ITERATIONS = 10_000
MAX_ITERATIONS = 5_000_000  # a hostile central must not make the kiosk spin for minutes per PIN
PIN_DIGITS = (4, 8)


def valid_pin(pin: str) -> bool:
    return pin.isascii() and pin.isdigit() and PIN_DIGITS[0] <= len(pin) <= PIN_DIGITS[1]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_pin(pin: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if not valid_pin(pin):
        raise ValueError(f"a PIN is {PIN_DIGITS[0]} to {PIN_DIGITS[1]} digits")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def check_hash_format(encoded: str) -> str:
    """The encoded hash if well formed; ValueError saying what is wrong otherwise."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError(f"expected {SCHEME}$ITERATIONS$SALT$HASH")
    if not parts[1].isdigit() or not MIN_ITERATIONS <= int(parts[1]) <= MAX_ITERATIONS:
        raise ValueError(f"iterations: expected {MIN_ITERATIONS} to {MAX_ITERATIONS}")
    try:
        salt, digest = _unb64(parts[2]), _unb64(parts[3])
    except ValueError:
        raise ValueError("salt or hash: not base64") from None
    if len(salt) < 8 or len(digest) != 32:
        raise ValueError("salt or hash: wrong length")
    return encoded


def pin_matches(pin: str, encoded: str) -> bool:
    """Constant-time check; False for a malformed PIN or hash."""
    if not valid_pin(pin):
        return False
    try:
        check_hash_format(encoded)
    except ValueError:
        return False
    _, iterations, salt, digest = encoded.split("$")
    computed = hashlib.pbkdf2_hmac("sha256", pin.encode(), _unb64(salt), int(iterations))
    return hmac.compare_digest(computed, _unb64(digest))
