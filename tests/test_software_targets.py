"""Staged updates on the reference central: a fleet default, a canary group, per-kiosk pins; each kiosk's
config carries its target, and the fleet view names the kiosks running something else."""

from __future__ import annotations

import httpx

from kiosk_client.adapters.central_http import HttpCentral, enroll
from kiosk_client.central.software_targets import target_for
from kiosk_client.core.models import Heartbeat

from .conftest import Site


def test_a_pin_beats_the_canary_group_which_beats_the_fleet_default() -> None:
    plan = {"default": "1.4", "canary": {"version": "1.5", "kiosks": ["a", "b"]}, "pins": {"b": "1.3"}}
    assert target_for("a", plan) == ("1.5", "canary")
    assert target_for("b", plan) == ("1.3", "pin")
    assert target_for("c", plan) == ("1.4", "fleet")
    assert target_for("c", {"default": None, "canary": None, "pins": {}}) == (None, None)


async def test_each_kiosk_hears_its_target_and_the_fleet_view_shows_who_is_off_it(site: Site) -> None:
    canary_id = site.kiosk_id
    pinned_id = site.admin.create_kiosk("Borne 2", "Autre site")
    plain_id = site.admin.create_kiosk("Borne 3", "Autre site")
    kiosks = {}
    for kiosk_id, code in (
        (canary_id, site.enrollment_code),
        (pinned_id, site.admin.enrollment_code(pinned_id)),
        (plain_id, site.admin.enrollment_code(plain_id)),
    ):
        kiosks[kiosk_id] = HttpCentral(site.url, (await enroll(site.url, code)).device_token)
    admin = {"Authorization": f"Bearer {site.admin_token}"}
    try:
        assert (await kiosks[plain_id].fetch_config()).software_target is None  # nothing set: null
        plan = {
            "default": "1.4.0",
            "canary": {"version": "1.5.0-rc1", "kiosks": [canary_id]},
            "pins": {pinned_id: "1.3.9"},
        }
        async with httpx.AsyncClient(base_url=site.url, headers=admin) as http:
            kept = await http.put("/api/v1/admin/software-targets", json=plan)
            assert kept.status_code == 200 and kept.json() == plan
            for bad in (
                {"default": "1.4.0; rm -rf /"},
                {"default": ""},
                {"default": 14},
                {"canary": {"version": "1.5", "kiosks": ["kiosk_nope"]}},
                {"canary": {"version": "1.5"}},
                {"canary": ["1.5"]},
                {"pins": {"kiosk_nope": "1.0"}},
                {"pins": {pinned_id: "x" * 41}},
                {"pins": [pinned_id]},
                {"default": "1.4.0", "rollout": "all"},
            ):
                refused = await http.put("/api/v1/admin/software-targets", json=bad)
                assert refused.status_code == 400, bad
            assert (await http.get("/api/v1/admin/software-targets")).json() == plan  # nothing changed
        assert (await kiosks[canary_id].fetch_config()).software_target == "1.5.0-rc1"
        assert (await kiosks[pinned_id].fetch_config()).software_target == "1.3.9"
        assert (await kiosks[plain_id].fetch_config()).software_target == "1.4.0"

        for kiosk_id, runs in ((canary_id, "1.5.0-rc1"), (pinned_id, "1.4.0"), (plain_id, "1.4.0")):
            await kiosks[kiosk_id].send_heartbeat(Heartbeat("idle", None, {}, runs))
        async with httpx.AsyncClient(base_url=site.url, headers=admin) as http:
            view = (await http.get("/api/v1/admin/fleet")).json()
        rows = {k["id"]: k for k in view["kiosks"]}
        assert [k for k, row in rows.items() if row["off_target"]] == [
            pinned_id
        ]  # runs 1.4.0, pinned at 1.3.9
        assert (rows[pinned_id]["software_target"], rows[pinned_id]["software_target_source"]) == (
            "1.3.9",
            "pin",
        )
        assert rows[canary_id]["software_target_source"] == "canary"
        assert rows[plain_id]["software_target_source"] == "fleet"
        assert view["summary"]["off_target"] == 1
    finally:
        for central in kiosks.values():
            await central.aclose()
