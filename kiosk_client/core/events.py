"""What the engine tells the UI (and the demo, the benchmarks). Immutable, named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .document_desk import DocumentsState
from .models import Appointment
from .printing import PrintState
from .session import EndReason, Session
from .volume import DEFAULT_LEVEL


class Notice(StrEnum):
    """Things an animateur should know; the UI words them."""

    CENTRAL_UNREACHABLE = "central_unreachable"
    NOT_ENROLLED = "not_enrolled"
    SCHEDULE_UNREADABLE = "schedule_unreadable"
    APPOINTMENTS_SKIPPED = "appointments_skipped"
    CAMERA_MISSING = "camera_missing"
    MICROPHONE_MISSING = "microphone_missing"
    CALL_SETUP_FAILING = "call_setup_failing"
    RELAY_UNREACHABLE = "relay_unreachable"  # the TURN server did not answer on a path
    RELAY_REFUSED = "relay_refused"  # the TURN server refused the credentials (secret, clock)
    APPOINTMENT_AT_RISK = "appointment_at_risk"  # the pre-flight before the next appointment failed
    PRINTER_PROBLEM = "printer_problem"  # the last printing failed (no paper, offline…): until one works


@dataclass(frozen=True, slots=True)
class KioskSnapshot:
    site_name: str
    kiosk_name: str
    session: Session
    today: tuple[Appointment, ...]
    central_reachable: bool
    schedule_known: bool
    notices: frozenset[Notice]
    microphone_on: bool
    camera_on: bool
    media_flowing: bool
    clock_offset_s: float
    control: str = "none"  # remote control of the form view: none, requested, granted
    form_origins: tuple[str, ...] = ()  # where the form view may go in this session
    documents: DocumentsState | None = None  # None: no scanning on this kiosk (or no session)
    volume: int = DEFAULT_LEVEL  # the loudness the citizen chose (core.volume), back to default per session
    out_of_service: bool = False  # a reset check failed: « Borne momentanément indisponible »
    evaluation_url: str | None = None  # « Je donne mon avis », shown once the citizen has rated
    printing: PrintState | None = None  # None: no printing on this kiosk (or no session)


@dataclass(frozen=True, slots=True)
class SessionDocument:
    """A document the citizen just sent, for the form view's file chooser (this session only)."""

    name: str
    data: bytes

    def __repr__(self) -> str:
        return f"SessionDocument({self.name!r}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class StateChanged:
    snapshot: KioskSnapshot


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Timings of one session, for reports and benchmarks. Holds nothing about the citizen."""

    appointment_id: str
    scheduled_start: datetime
    offer_posted_at: float | None
    answer_received_at: float | None
    first_remote_video_at: float | None
    first_remote_audio_at: float | None
    remote_video_frames: int
    remote_audio_frames: int
    local_video_frames_sent: int
    end_reason: EndReason
    ended_at: float
    control_audit: dict[str, object] | None = None  # counts and URLs, never what was typed
    # For the council's usage figures (the central's GET /admin/usage): counts, never content.
    first_answer_at: float | None = None  # the clerk's first answer in this session (None: never met)
    connections: int = 0  # how many times the clerk answered (more than one: the call dropped and came back)
    documents_sent: int = 0  # documents the clerk's side confirmed
    control_used: bool = False  # the citizen let the clerk fill in the form
    citizen_rating: int | str | None = None  # 1…5, "skipped", "no_answer"; None: not asked


@dataclass(frozen=True, slots=True)
class SessionFinished:
    record: SessionRecord


@dataclass(frozen=True, slots=True)
class LiveCheckEnded:
    """The staff's live camera and microphone check stopped and released both devices. `reason`:
    "stopped" (the page closed), "time_limit", "panel_closed", "session" (a citizen's call needs
    them), "reset" (the reset check between citizens)."""

    reason: str


KioskEvent = StateChanged | SessionFinished | SessionDocument | LiveCheckEnded
