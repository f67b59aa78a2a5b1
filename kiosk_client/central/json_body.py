"""Reading a request's JSON body with bounds, so that no body, however hostile, gets past a 4xx.

Python's json module has no limits of its own (deep nesting raises RecursionError, long numbers
ValueError, NaN and 1e999 pass as floats, an escaped lone surrogate makes a string SQLite and hashlib
refuse): each of these became a 500 before. The bounds are the kiosk's own (core.bounded_json), which
reads the clerk's messages the same way.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core import bounded_json
from .errors import ApiError


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request body (UTF-8, whatever charset the request claims), or ApiError 400."""
    try:
        data = bounded_json.loads(raw)
    except bounded_json.UnsafeJson as exc:
        raise ApiError(400, "invalid_json", f"the request body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    return data


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The one way handlers read a body: bounded in size (413), depth, numbers and encoding (400)."""
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # e.g. "Content-Encoding: gzip" over bytes that are not gzip
        raise ApiError(400, "invalid_body", "the request body could not be decoded") from None
    return parse_json_object(raw)
