"""Sound cues come from what changed between two snapshots: once per moment, never on a repeat."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from kiosk_client.core.cues import Cue, cues_between
from kiosk_client.core.document_desk import DocumentsState
from kiosk_client.core.document_protocol import Manifest
from kiosk_client.core.document_transfer import Transfer, TransferStatus
from kiosk_client.core.events import KioskSnapshot
from kiosk_client.core.models import Appointment
from kiosk_client.core.session import EndReason, Phase, Session

NOW = datetime.now(UTC)
APPOINTMENT = Appointment("a1", "CAF", "Mme Martin", NOW, NOW + timedelta(minutes=30))
MANIFEST = Manifest("0" * 32, "Avis.pdf", "application/pdf", 1000, 1, "a" * 64)


def snap(phase: Phase, **changes: object) -> KioskSnapshot:
    session = Session(phase, APPOINTMENT if phase is not Phase.IDLE else None)
    values: dict[str, object] = {
        "site_name": "",
        "kiosk_name": "",
        "session": session,
        "today": (),
        "central_reachable": True,
        "schedule_known": True,
        "notices": frozenset(),
        "microphone_on": True,
        "camera_on": True,
        "media_flowing": True,
        "clock_offset_s": 0.0,
    }
    values.update(changes)
    return KioskSnapshot(**values)  # type: ignore[arg-type]


def test_each_key_moment_has_its_cue_once() -> None:
    waiting = snap(Phase.WAITING_FOR_CLERK)
    joined = snap(Phase.IN_CALL, documents=DocumentsState())
    assert cues_between(waiting, joined) == [Cue.CLERK_JOINED]
    assert cues_between(joined, joined) == []  # the clock ticks: nothing new
    asked = replace(joined, control="requested")
    assert cues_between(joined, asked) == [Cue.CONTROL_REQUESTED]
    assert cues_between(asked, asked) == []
    granted = replace(asked, control="granted")
    assert cues_between(asked, granted) == []
    requested = replace(granted, documents=DocumentsState(requested="avis d'imposition"))
    assert cues_between(granted, requested) == [Cue.DOCUMENT_REQUESTED]
    assert cues_between(requested, requested) == []
    sending = replace(
        requested, documents=DocumentsState(transfers=(Transfer(MANIFEST, TransferStatus.SENDING),))
    )
    assert cues_between(requested, sending) == []
    received = replace(
        sending, documents=DocumentsState(transfers=(Transfer(MANIFEST, TransferStatus.RECEIVED),))
    )
    assert cues_between(sending, received) == [Cue.DOCUMENT_RECEIVED]
    assert cues_between(received, received) == []
    ended = replace(received, session=Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_HUNG_UP))
    assert cues_between(received, ended) == []


def test_a_window_that_opens_in_the_middle_of_a_call_hears_what_is_pending() -> None:
    # The first snapshot a window renders has no "before": the clerk is there, and asking.
    assert cues_between(None, snap(Phase.IN_CALL, control="requested")) == [
        Cue.CLERK_JOINED,
        Cue.CONTROL_REQUESTED,
    ]
    assert cues_between(None, snap(Phase.IDLE)) == []
