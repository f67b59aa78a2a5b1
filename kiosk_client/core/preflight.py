"""Pre-flight: ten minutes before an appointment the kiosk checks what the call will need — its devices,
the central, a TURN allocation, the uplink — so that a problem is known while someone can still act
(the staff on site, the central's operators), not when the citizen sits down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .models import Appointment, Schedule

PREFLIGHT_BEFORE = timedelta(minutes=10)
# A call needs ≈250 kbit/s of camera, 40 of voice and 100 of form view to be comfortable; documents
# go on top. Below this the appointment is at risk.
MIN_UPLINK_KBPS = 400.0
OK = "ok"
NOT_CONFIGURED = "not_configured"  # no TURN server, no scanner: not a fault of this terminal


@dataclass(frozen=True, slots=True)
class PreflightResult:
    appointment_id: str
    at: float  # wall clock
    devices: dict[str, str]  # camera, microphone, speaker, scanner: "ok" or what is wrong
    central: str
    relay: str  # a TURN allocation: "ok", "not_configured" or why it failed
    uplink_kbps: float | None  # None: could not be measured

    @property
    def problems(self) -> tuple[str, ...]:
        found = [
            f"{name}: {state}"
            for name, state in sorted(self.devices.items())
            if state not in (OK, NOT_CONFIGURED)
        ]
        if self.central != OK:
            found.append(f"central: {self.central}")
        if self.relay not in (OK, NOT_CONFIGURED):
            found.append(f"relay: {self.relay}")
        if self.uplink_kbps is None:
            found.append("uplink: not measured")
        elif self.uplink_kbps < MIN_UPLINK_KBPS:
            found.append(f"uplink: {self.uplink_kbps:.0f} kbit/s")
        return tuple(found)

    @property
    def at_risk(self) -> bool:
        return bool(self.problems)

    def to_json(self) -> dict[str, object]:
        return {
            "appointment_id": self.appointment_id,
            "at": self.at,
            "devices": dict(self.devices),
            "central": self.central,
            "relay": self.relay,
            "uplink_kbps": None if self.uplink_kbps is None else round(self.uplink_kbps, 1),
            "at_risk": self.at_risk,
            "problems": list(self.problems),
        }


def due(
    now: datetime, schedule: Schedule | None, finished: frozenset[str], checked: frozenset[str]
) -> Appointment | None:
    """The next appointment within PREFLIGHT_BEFORE of its start, not yet checked nor finished."""
    if schedule is None:
        return None
    waiting = [
        a
        for a in schedule.appointments
        if a.id not in checked and a.id not in finished and a.start - PREFLIGHT_BEFORE <= now < a.start
    ]
    return min(waiting, key=lambda a: a.start, default=None)
