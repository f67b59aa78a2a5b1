"""Staged updates, the central's side: which software version each kiosk should run.

A fleet default, a canary group that gets a newer version first, and a per-kiosk pin (a kiosk held
back, or tried alone). Each kiosk's config carries its `software_target`; the fleet view shows the
kiosks running something else. The releases a target can name are uploaded apart (releases.py); the
terminal's updater installs them (system/updater.py, README "Updates").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..core.releases import VERSION as RELEASE_VERSION
from .app import STORE, admin
from .errors import ApiError
from .json_body import read_json_object
from .store import Store

SETTING = "software_targets"
VERSION = RELEASE_VERSION  # one rule for targets and releases
MAX_KIOSKS = 10_000
EMPTY: dict[str, Any] = {"default": None, "canary": None, "pins": {}}


def targets(store: Store) -> dict[str, Any]:
    return {**EMPTY, **(store.get_setting(SETTING) or {})}


def target_for(kiosk_id: str, plan: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(version, source): "pin", "canary", "fleet", or (None, None) when no target is set."""
    pins = plan.get("pins") or {}
    if kiosk_id in pins:
        return str(pins[kiosk_id]), "pin"
    canary = plan.get("canary")
    if canary and kiosk_id in canary["kiosks"]:
        return str(canary["version"]), "canary"
    if plan.get("default"):
        return str(plan["default"]), "fleet"
    return None, None


def _version(value: Any, where: str) -> str:
    if not isinstance(value, str) or not VERSION.match(value):
        raise ApiError(
            400, "invalid_field", f"{where}: expected a version such as 1.4.2 (letters, digits, . + ~ _ -)"
        )
    return value


def _known_kiosk(store: Store, value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 64 or store.kiosk(value) is None:
        raise ApiError(400, "invalid_field", f"{where}: no such kiosk")
    return value


def checked_plan(store: Store, data: dict[str, Any]) -> dict[str, Any]:
    """The whole plan, validated (every version well-formed, every kiosk known), or ApiError 400."""
    unknown = set(data) - set(EMPTY)
    if unknown:
        raise ApiError(400, "invalid_field", f"unknown keys: {', '.join(sorted(unknown))[:200]}")
    default = data.get("default")
    plan: dict[str, Any] = {"default": None if default is None else _version(default, "default")}
    canary = data.get("canary")
    if canary is None:
        plan["canary"] = None
    else:
        if not isinstance(canary, dict) or set(canary) != {"version", "kiosks"}:
            raise ApiError(400, "invalid_field", "canary: expected {version, kiosks} or null")
        kiosks = canary["kiosks"]
        if not isinstance(kiosks, list) or len(kiosks) > MAX_KIOSKS:
            raise ApiError(400, "invalid_field", "canary.kiosks: expected an array of kiosk ids")
        plan["canary"] = {
            "version": _version(canary["version"], "canary.version"),
            "kiosks": sorted({_known_kiosk(store, k, "canary.kiosks[]") for k in kiosks}),
        }
    pins = data.get("pins")
    if pins is None:
        pins = {}
    if not isinstance(pins, dict) or len(pins) > MAX_KIOSKS:
        raise ApiError(400, "invalid_field", "pins: expected an object of kiosk id → version")
    plan["pins"] = {
        _known_kiosk(store, k, "pins"): _version(v, f"pins.{k[:64]}") for k, v in sorted(pins.items())
    }
    return plan


async def admin_get_software_targets(request: web.Request) -> web.Response:
    admin(request)
    return web.json_response(targets(request.app[STORE]))


async def admin_put_software_targets(request: web.Request) -> web.Response:
    """The whole plan at once (what is left out is cleared): any wrong value is a 400 and changes
    nothing."""
    admin(request)
    store = request.app[STORE]
    plan = checked_plan(store, await read_json_object(request))
    store.put_setting(SETTING, plan)
    return web.json_response(plan)


def add_software_target_routes(app: web.Application, v1: str) -> None:
    app.router.add_get(f"{v1}/admin/software-targets", admin_get_software_targets)
    app.router.add_put(f"{v1}/admin/software-targets", admin_put_software_targets)
