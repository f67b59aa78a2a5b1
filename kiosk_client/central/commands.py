"""Commands from IT staff to a kiosk, the central's side: what a command is, when it expires, how it
reaches the kiosk (the heartbeat's answer) and how a screenshot is checked before it is kept.

A command is delivered at most once: `pending` → `delivered` when a heartbeat's answer carries it,
then `done`, `refused` or `failed` when the kiosk posts its result. One never delivered before its
expiry is `expired` and never will be; one delivered whose result never came shows `expired` too,
until (if ever) the result arrives.
"""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("reload", "restart", "screenshot")
OUTCOMES = ("done", "refused", "failed")
STATES = ("pending", "delivered", "expired", *OUTCOMES)
DEFAULT_EXPIRY = timedelta(minutes=5)
MAX_EXPIRY = timedelta(hours=1)
MIN_EXPIRY = timedelta(seconds=5)
MAX_PENDING_PER_KIOSK = 10  # a stuck kiosk does not pile up a queue of restarts
MAX_SCREENSHOT_BYTES = 3 * 1024 * 1024
MAX_SCREENSHOT_SIDE = 8192
SCREENSHOTS_KEPT_PER_KIOSK = 3
COMMANDS_KEPT = timedelta(days=30)  # older commands are forgotten (their screenshots went before)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type → samples per pixel
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def stamp(moment: datetime) -> str:
    """A fixed-width UTC time: ISO 8601 that sorts as text (expiry is compared in SQL)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def delivered_json(row: Any, now: datetime) -> dict[str, Any]:
    """A command as the kiosk hears it in the heartbeat's answer."""
    expires = datetime.fromisoformat(row["expires_at"])
    return {
        "id": row["id"],
        "kind": row["kind"],
        "expires_at": row["expires_at"],
        # What the kiosk goes by: a duration, immune to a wrong clock on the kiosk.
        "expires_in_seconds": round(max(0.0, (expires - now).total_seconds()), 3),
    }


def command_json(row: Any, now: datetime) -> dict[str, Any]:
    """A command as IT staff see it (GET /admin/commands)."""
    state = row["state"]
    if state in ("pending", "delivered") and datetime.fromisoformat(row["expires_at"]) <= now:
        state = "expired"
    screenshot = None
    if row["png_bytes"] is not None:
        screenshot = {
            "url": f"/api/v1/admin/commands/{row['id']}/screenshot",
            "width": row["png_width"],
            "height": row["png_height"],
            "bytes": row["png_bytes"],
        }
    return {
        "id": row["id"],
        "kiosk_id": row["kiosk_id"],
        "kind": row["kind"],
        "state": state,
        "reason": row["reason"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "delivered_at": row["delivered_at"],
        "finished_at": row["finished_at"],
        "screenshot": screenshot,
    }


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a well-formed, non-interlaced PNG, or ValueError saying what is wrong.
    Every chunk's CRC is checked and the image data is inflated (bounded by what the header
    announces), so nothing but a decodable picture is kept and served."""
    if len(data) > MAX_SCREENSHOT_BYTES:
        raise ValueError(f"larger than {MAX_SCREENSHOT_BYTES} bytes")
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (no signature)")
    offset = len(PNG_SIGNATURE)
    header: tuple[int, int, int, int, int, int, int] | None = None
    idat = bytearray()
    ended = False
    while offset < len(data):
        if offset + 12 > len(data):
            raise ValueError("truncated chunk")
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if len(body) != length or offset + 12 + length > len(data):
            raise ValueError("truncated chunk")
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in a {kind!r} chunk")
        offset += 12 + length
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise ValueError("the first chunk is not IHDR")
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            ended = True
            break
    if header is None or not ended or not idat:
        raise ValueError("missing IHDR, IDAT or IEND")
    if offset != len(data):
        raise ValueError("bytes after IEND")
    width, height, depth, colour, compression, filtering, interlace = header
    if not (0 < width <= MAX_SCREENSHOT_SIDE and 0 < height <= MAX_SCREENSHOT_SIDE):
        raise ValueError(f"size {width}x{height} out of bounds")
    if colour not in CHANNELS or depth not in DEPTHS[colour] or compression or filtering or interlace:
        raise ValueError("unsupported PNG format (interlaced, or an invalid depth or colour type)")
    expected = height * (1 + (width * CHANNELS[colour] * depth + 7) // 8)
    inflater = zlib.decompressobj()
    try:
        pixels = inflater.decompress(bytes(idat), expected + 1)
    except zlib.error as exc:
        raise ValueError(f"image data not decodable: {exc}") from None
    if len(pixels) != expected or not inflater.eof:
        raise ValueError("image data does not match the header's size")
    if any(pixels[row * (expected // height)] > 4 for row in range(height)):
        raise ValueError("invalid row filter")
    return width, height
