"""Staged updates on the kiosk: when it may ask for its software target to be installed, and what it
tells the central about it.

The kiosk never installs anything itself (its code is root's): it downloads its target's wheel into
its spool, checks the SHA-256 its config gave, and — only when nobody can be disturbed — writes an
install request that the privileged updater (system/updater.py) acts on. This module is the pure part:
the idle rule, the request, and the states reported in the heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# The updater restarts the kiosk and may roll it back: a few minutes in all. An appointment starting
# this soon keeps the kiosk as it is (the citizen may already be on the way, or early).
APPOINTMENT_MARGIN = timedelta(minutes=20)

# Why an install waits (the first that applies).
IN_SESSION = "in_session"
STAFF_PANEL = "staff_panel"
RESETTING = "resetting"
APPOINTMENT_SOON = "appointment_soon"

# States the kiosk reports in its heartbeat (`update.state`); the updater writes the last three.
DOWNLOADING = "downloading"
DOWNLOAD_FAILED = "download_failed"
WAITING_IDLE = "waiting_idle"
REQUESTED = "requested"
INSTALLING = "installing"
INSTALLED = "installed"
FAILED = "failed"
# The updater's own states, in its status file only (the kiosk asks again at its next good poll):
# the request named another release than the central designates, or the central could not be asked.
REFUSED = "refused"
UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True, slots=True)
class KioskActivity:
    """What the kiosk is doing, as far as an install is concerned."""

    session_idle: bool  # no citizen's session, from the waiting screen to the goodbye
    staff_panel_open: bool  # an animateur is at the kiosk (or its live device check runs)
    resetting: bool  # the reset check between citizens runs
    appointments: tuple[tuple[datetime, datetime], ...] = ()  # (start, end) of those not done yet


def install_blocker(activity: KioskActivity, now: datetime) -> str | None:
    """Why the install must wait now, or None when the kiosk may be restarted."""
    if not activity.session_idle:
        return IN_SESSION
    if activity.staff_panel_open:
        return STAFF_PANEL
    if activity.resetting:
        return RESETTING
    for start, end in activity.appointments:
        # One under way (a citizen late, a walk-in) or starting within the margin.
        if end > now and start < now + APPOINTMENT_MARGIN:
            return APPOINTMENT_SOON
    return None


def pending_appointments(
    appointments: Iterable[tuple[str, datetime, datetime]], done: frozenset[str]
) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((start, end) for ident, start, end in appointments if ident not in done)


@dataclass(frozen=True, slots=True)
class InstallRequest:
    """What the kiosk asks the updater for: this version, whose wheel (in the spool) has this hash.
    The kiosk user wrote it: the updater installs only what the central designates (SoftwareTarget),
    the version here must be that one, and the hash is a hint it never relies on."""

    version: str
    sha256: str
    wheel: str  # the wheel's file name in the spool (never a path: the updater looks only there)

    def to_json(self) -> dict[str, str]:
        return {"version": self.version, "sha256": self.sha256, "wheel": self.wheel}


@dataclass(frozen=True, slots=True)
class SoftwareTarget:
    """What the central designates for this kiosk (its config's `software_target` and
    `software_target_sha256`), as the updater fetched it itself."""

    version: str | None
    sha256: str | None


def target_refusal(request: InstallRequest, target: SoftwareTarget) -> str | None:
    """Why the request is not for the release the central designates, or None when it is (the wheel's
    bytes are then checked against `target.sha256`)."""
    if target.version is None or target.sha256 is None:
        return "the central designates no release for this kiosk"
    if request.version != target.version:
        return f"the central designates {target.version[:40]!r}, not {request.version[:40]!r}"
    return None


@dataclass(frozen=True, slots=True)
class UpdaterReport:
    """What the updater last wrote (its status file): its last run, and the versions it rolled back,
    which are never tried again automatically."""

    state: str  # INSTALLING, INSTALLED, FAILED, REFUSED or UNCONFIRMED
    version: str
    error: str | None = None
    failed: frozenset[str] = frozenset()
    at: datetime | None = None  # when it wrote this


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """The staged update as the heartbeat reports it."""

    state: str
    version: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "version": self.version, "error": self.error}


# The updater could not confirm the request with the central, or the central designated another
# release: asked again this long after, not at every poll (each ask starts the updater).
ASK_AGAIN_AFTER = timedelta(minutes=10)


def settled_status(
    target: str, running: str, report: UpdaterReport | None, now: datetime | None = None
) -> tuple[UpdateStatus | None, bool]:
    """(status, go_on): what to report before the kiosk does anything itself for `target`, and whether
    it should go on (download, wait, ask). It stops when it runs the target already, when the updater
    is at it, when the updater failed this version (until IT staff set another target), and for
    ASK_AGAIN_AFTER when the updater last refused it or could not confirm it with the central (the
    heartbeat then says which, and why)."""
    if (
        report is not None
        and report.version == target
        and target != running
        and report.state in (REFUSED, UNCONFIRMED)
        and target not in report.failed
    ):
        recent = now is None or report.at is None or now - report.at < ASK_AGAIN_AFTER
        return UpdateStatus(report.state, target, report.error), not recent
    if target == running:
        return (UpdateStatus(INSTALLED, target) if report and report.version == target else None), False
    if report is not None and target in report.failed:
        error = report.error if report.version == target else None
        return UpdateStatus(FAILED, target, error), False
    if report is not None and report.version == target:
        if report.state == FAILED:
            return UpdateStatus(FAILED, target, report.error), False
        if report.state in (INSTALLING, INSTALLED):  # installed: this old process is about to be replaced
            return UpdateStatus(INSTALLING, target), False
    return None, True
