"""Staged updates, the releases: the kiosk-client wheels IT staff upload, which kiosks download.

A version is uploaded once (PUT /admin/software/{version}) and names those bytes for good; the
central keeps the wheel and its SHA-256, and serves each kiosk's config the hash of its target
(`software_target_sha256`, null while the target names no uploaded release). A kiosk downloads only
its own target (GET /kiosk/software/{version}) and checks the hash before anything else happens.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from typing import Any

from aiohttp import web

from ..core.releases import MAX_WHEEL_BYTES, VERSION, BadWheel, check_wheel, wheel_filename
from .app import STORE, admin, device
from .errors import ApiError
from .software_targets import target_for, targets
from .store import Store

log = logging.getLogger(__name__)


def release_json(row: Any) -> dict[str, Any]:
    return {
        "version": row["version"],
        "filename": row["filename"],
        "sha256": row["sha256"],
        "bytes": row["bytes"],
        "uploaded_at": row["uploaded_at"],
    }


def target_sha256(store: Store, version: str | None) -> str | None:
    if version is None:
        return None
    row = store.release(version)
    return None if row is None else str(row["sha256"])


async def _read_capped(request: web.Request) -> bytes:
    """The body, read in chunks and refused as soon as it passes the cap (the app's own body limit is
    for JSON; a wheel is bigger)."""
    if request.content_length is not None and request.content_length > MAX_WHEEL_BYTES:
        raise ApiError(413, "too_large", f"a release is at most {MAX_WHEEL_BYTES // 2**20} MB")
    body = bytearray()
    async for chunk in request.content.iter_chunked(256 * 1024):
        body += chunk
        if len(body) > MAX_WHEEL_BYTES:
            raise ApiError(413, "too_large", f"a release is at most {MAX_WHEEL_BYTES // 2**20} MB")
    return bytes(body)


async def admin_put_release(request: web.Request) -> web.Response:
    admin(request)
    version = request.match_info["version"]
    if not VERSION.match(version):
        raise ApiError(400, "invalid_field", "version: letters, digits, . + ~ _ - (at most 40)")
    store = request.app[STORE]
    if store.release(version) is not None:
        raise ApiError(409, "release_exists", f"release {version} was already uploaded: use a new version")
    wheel = await _read_capped(request)
    try:
        check_wheel(io.BytesIO(wheel), version)
    except BadWheel as exc:
        raise ApiError(400, "invalid_wheel", str(exc)) from None
    sha256 = hashlib.sha256(wheel).hexdigest()
    encoded = base64.b64encode(wheel).decode("ascii")
    if not store.put_release(version, wheel_filename(version), sha256, encoded, len(wheel)):
        raise ApiError(409, "release_exists", f"release {version} was already uploaded: use a new version")
    log.warning("software release %s uploaded (%d bytes, sha256 %s)", version, len(wheel), sha256)
    row = store.release(version)
    return web.json_response(release_json(row), status=201)


async def admin_list_releases(request: web.Request) -> web.Response:
    admin(request)
    return web.json_response({"releases": [release_json(r) for r in request.app[STORE].releases()]})


async def kiosk_get_release(request: web.Request) -> web.Response:
    """Only the kiosk's own target: a kiosk has no business fetching other versions."""
    kiosk = device(request)
    store = request.app[STORE]
    version = request.match_info["version"]
    wanted, _ = target_for(kiosk["id"], targets(store))
    if version != wanted:
        raise ApiError(403, "not_your_target", "this kiosk's software target is another version")
    row = store.release(version)
    encoded = store.release_wheel(version)
    if row is None or encoded is None:
        raise ApiError(404, "not_found", "this release was not uploaded")
    return web.Response(
        body=base64.b64decode(encoded),
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{row["filename"]}"',
            "X-Content-SHA256": row["sha256"],
            "Cache-Control": "no-store",
        },
    )


def add_release_routes(app: web.Application, v1: str) -> None:
    app.router.add_get(f"{v1}/admin/software", admin_list_releases)
    app.router.add_put(f"{v1}/admin/software/{{version}}", admin_put_release)
    app.router.add_get(f"{v1}/kiosk/software/{{version}}", kiosk_get_release)
