"""The fleet at a glance, for IT staff: which kiosks are up, what each last said, and which of today's
appointments are at risk — before a citizen drives to a broken terminal.

Built from what the central already keeps (each kiosk's last heartbeat and pre-flight, its session
reports with their reset checks, the appointments); `fleet_view` is plain data in, plain data out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

# A database row read by column name (the store's Row, a dict in tests).
Row = Any

# The kiosk sends a heartbeat every 30 s (core/engine.HEARTBEAT_S): three missed, it is offline.
OFFLINE_AFTER = timedelta(seconds=95)


def _parse(moment: str | None) -> datetime | None:
    if not moment:
        return None
    try:
        return datetime.fromisoformat(moment)
    except ValueError:
        return None


def _column(row: Row, name: str) -> Any:
    """A column newer than some callers' rows (plain dicts in tests, older fixtures): None there."""
    try:
        return row[name]
    except (KeyError, IndexError):
        return None


def _json(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def kiosk_problems(
    kiosk: Mapping[str, Any], last_reset: Mapping[str, Any] | None, now: datetime
) -> list[str]:
    """Why this kiosk may fail its next citizen, as stable codes (the page words them)."""
    problems: list[str] = []
    seen = _parse(kiosk["last_seen"])
    if kiosk["token_hash"] is None:
        problems.append("not_enrolled")
    elif seen is None:
        problems.append("never_seen")
    elif now - seen > OFFLINE_AFTER:
        problems.append("offline")
    if kiosk["last_state"] == "out_of_service":
        problems.append("out_of_service")
    devices = _json(kiosk["last_devices"]) or {}
    problems.extend(f"device_{name}_{state}" for name, state in sorted(devices.items()) if state != "ok")
    preflight = _json(kiosk["last_preflight"])
    if isinstance(preflight, dict) and preflight.get("at_risk"):
        problems.append("preflight_at_risk")
    if last_reset is not None and not last_reset["passed"]:
        problems.append("reset_check_failed")
    return problems


def fleet_view(
    kiosks: Iterable[Row],
    reports: Iterable[Row],
    appointments: Mapping[str, Sequence[Row]],
    finished: frozenset[str],
    now: datetime,
    targets: Mapping[str, tuple[str | None, str | None]] | None = None,
    uploaded: frozenset[str] | None = None,
) -> dict[str, Any]:
    """`reports`: session reports in the order received; `appointments`: today's, per kiosk id;
    `finished`: ids of appointments whose call has ended (no citizen left to worry about); `targets`:
    per kiosk id, the software version it should run and why ("pin", "canary", "fleet"; see
    software_targets.py), (None, None) or absent when none is set; `uploaded`: the versions whose release
    (wheel) the central holds, which kiosks can install (None: not known, none flagged)."""
    last_reset: dict[str, Row] = {}
    for report in reports:
        last_reset[report["kiosk_id"]] = report
    rows = []
    versions: Counter[str] = Counter()
    for kiosk in kiosks:
        reset = last_reset.get(kiosk["id"])
        problems = kiosk_problems(kiosk, reset, now)
        upcoming = [
            {"id": a["id"], "start": a["start"], "end": a["end"], "service": a["service"]}
            for a in appointments.get(kiosk["id"], ())
            if a["id"] not in finished and (_parse(a["end"]) or now) > now
        ]
        if kiosk["software_version"]:
            versions[kiosk["software_version"]] += 1
        target, source = (targets or {}).get(kiosk["id"], (None, None))
        # Off target: it said which version it runs, and that is not the one it should.
        off_target = (
            target is not None and bool(kiosk["software_version"]) and kiosk["software_version"] != target
        )
        update = _json(_column(kiosk, "last_update"))
        rows.append(
            {
                "id": kiosk["id"],
                "name": kiosk["name"],
                "site_name": kiosk["site_name"],
                "online": not {"not_enrolled", "never_seen", "offline"} & set(problems),
                "last_seen": kiosk["last_seen"],
                "state": kiosk["last_state"],
                "software_version": kiosk["software_version"],
                "software_target": target,
                "software_target_source": source,
                "off_target": off_target,
                # A target with no uploaded release: the kiosk cannot install it (IT staff forgot it).
                "software_target_missing": target is not None
                and uploaded is not None
                and target not in uploaded,
                # What the kiosk said of its staged update: {state, version, error} or null.
                "update": update if isinstance(update, dict) else None,
                "devices": _json(kiosk["last_devices"]) or {},
                "preflight": _json(kiosk["last_preflight"]),
                "last_reset_check": None
                if reset is None
                else {
                    "passed": bool(reset["passed"]),
                    "at": reset["reported_at"],
                    "trigger": reset["trigger"],
                },
                "problems": problems,
                "appointments_left_today": upcoming,
                "at_risk": bool(problems) and bool(upcoming),
            }
        )
    rows.sort(key=lambda r: (not r["at_risk"], not r["problems"], r["site_name"], r["name"]))
    return {
        "at": now.isoformat(),
        "offline_after_s": OFFLINE_AFTER.total_seconds(),
        "summary": {
            "kiosks": len(rows),
            "online": sum(r["online"] for r in rows),
            "with_problems": sum(bool(r["problems"]) for r in rows),
            "at_risk": sum(r["at_risk"] for r in rows),
            "appointments_at_risk": sum(len(r["appointments_left_today"]) for r in rows if r["at_risk"]),
            "versions": dict(versions.most_common()),
            "off_target": sum(r["off_target"] for r in rows),
            "update_failed": sum(bool(r["update"]) and r["update"]["state"] == "failed" for r in rows),
        },
        "kiosks": rows,
    }
