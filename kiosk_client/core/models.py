"""Immutable values the kiosk reasons about: appointments, schedules, remote config, call signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    service: str
    clerk_name: str
    start: datetime  # timezone-aware
    end: datetime
    allowed_origins: tuple[str, ...] = ()
    start_url: str | None = None


@dataclass(frozen=True, slots=True)
class WalkInService:
    """A service with clerks available for a walk-in session now (how many, never who)."""

    service: str
    clerks_available: int


@dataclass(frozen=True, slots=True)
class Schedule:
    kiosk_name: str
    site_name: str
    appointments: tuple[Appointment, ...]
    etag: str | None = None
    # Appointments the central sent that the kiosk could not read (id or index, reason).
    rejected: tuple[tuple[str, str], ...] = ()

    def find(self, appointment_id: str) -> Appointment | None:
        return next((a for a in self.appointments if a.id == appointment_id), None)


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """What the central tells the kiosk about how to run (GET /api/v1/kiosk/config)."""

    ice_servers: tuple[IceServer, ...] = ()
    poll_interval_s: float = 15.0
    join_before_s: float = 90.0
    no_show_after_s: float = 900.0
    staff_pin_hash: str | None = None  # core/staff_pin.py's format; None: the staff panel stays shut
    # « Je donne mon avis » (Services Publics+) or the council's own survey: shown as a QR code and a
    # short address once the citizen has rated the session. None: not shown.
    evaluation_url: str | None = None
    # Staged updates: the software version IT staff want this kiosk to run (None: no target), and the
    # SHA-256 of its wheel on the central (None until that release was uploaded: nothing to install).
    software_target: str | None = None
    software_target_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    sdp: str
    type: str  # "offer" or "answer"


@dataclass(frozen=True, slots=True)
class CallTicket:
    """The central's receipt for a posted offer."""

    call_id: str
    version: int


@dataclass(frozen=True, slots=True)
class CallSignal:
    """The signalling state of an appointment's call, as the central holds it."""

    version: int
    call_id: str | None
    answer: SessionDescription | None = None
    ended: bool = False
    ended_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    state: str
    appointment_id: str | None
    devices: dict[str, str] = field(default_factory=dict)
    software_version: str = ""
    preflight: dict[str, object] | None = None  # the last pre-flight's result (core/preflight.py)
    update: dict[str, object] | None = None  # the staged update's state (core/updates.UpdateStatus)


@dataclass(frozen=True, slots=True)
class Enrollment:
    kiosk_id: str
    device_token: str


@dataclass(frozen=True, slots=True)
class RgbImage:
    """A video frame ready to draw: packed RGB888 rows."""

    width: int
    height: int
    data: bytes
