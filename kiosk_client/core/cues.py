"""Short sounds that tell a citizen who is not looking at the screen that something happened.

Derived from two successive snapshots, so the UI plays each cue once, at the moment it happens, and
a snapshot repeated (the clock ticks every second) plays nothing.
"""

from __future__ import annotations

from enum import StrEnum

from .document_transfer import TransferStatus
from .events import KioskSnapshot
from .session import Phase


class Cue(StrEnum):
    CLERK_JOINED = "clerk_joined"
    CONTROL_REQUESTED = "control_requested"
    DOCUMENT_REQUESTED = "document_requested"
    DOCUMENT_RECEIVED = "document_received"
    TEST = "test"  # « Essayer le son »: the citizen checks they can hear the kiosk


def cues_between(previous: KioskSnapshot | None, current: KioskSnapshot) -> list[Cue]:
    """The cues for what changed from `previous` to `current`."""
    cues: list[Cue] = []
    phase = current.session.phase
    was_in_call = previous is not None and previous.session.phase is Phase.IN_CALL
    if phase is Phase.IN_CALL and not was_in_call:
        cues.append(Cue.CLERK_JOINED)  # also after a reconnection: the clerk is back
    if phase is not Phase.IN_CALL:
        return cues
    before = previous if was_in_call else None
    if current.control == "requested" and (before is None or before.control != "requested"):
        cues.append(Cue.CONTROL_REQUESTED)
    documents = current.documents
    earlier = before.documents if before is not None else None
    if documents is not None:
        if documents.requested and (earlier is None or earlier.requested != documents.requested):
            cues.append(Cue.DOCUMENT_REQUESTED)
        received_before = (
            {t.manifest.id for t in earlier.transfers if t.status is TransferStatus.RECEIVED}
            if earlier is not None
            else set()
        )
        if any(
            t.status is TransferStatus.RECEIVED and t.manifest.id not in received_before
            for t in documents.transfers
        ):
            cues.append(Cue.DOCUMENT_RECEIVED)
    return cues
