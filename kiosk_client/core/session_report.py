"""What the kiosk tells the central at the end of each session: the session's record (timings,
counts, the remote-control audit — nothing about the citizen) and the reset check's report.

Built once, kept in the local cache until the central has it (a central that is down gets it later),
and posted as it is: the document is the unit that is retried.
"""

from __future__ import annotations

import secrets

from .events import SessionRecord
from .reset_check import ResetReport


def record_to_json(record: SessionRecord) -> dict[str, object]:
    return {
        "appointment_id": record.appointment_id,
        "scheduled_start": record.scheduled_start.isoformat(),
        "end_reason": record.end_reason.value,
        "ended_at": record.ended_at,
        "offer_posted_at": record.offer_posted_at,
        "answer_received_at": record.answer_received_at,
        "first_remote_video_at": record.first_remote_video_at,
        "first_remote_audio_at": record.first_remote_audio_at,
        "remote_video_frames": record.remote_video_frames,
        "remote_audio_frames": record.remote_audio_frames,
        "local_video_frames_sent": record.local_video_frames_sent,
        "control_audit": record.control_audit,
        "call_seconds": (
            round(max(0.0, record.ended_at - record.first_answer_at), 1)
            if record.first_answer_at is not None
            else None
        ),
        "connections": record.connections,
        "documents_sent": record.documents_sent,
        "control_used": record.control_used,
        "citizen_rating": record.citizen_rating,
    }


def session_report(record: SessionRecord | None, reset: ResetReport) -> dict[str, object]:
    """`record` is None for the check at start-up (no session ended). The `report_id` lets the central
    keep one copy of a report the kiosk had to send twice (the answer to the first try was lost)."""
    return {
        "report_id": secrets.token_hex(16),
        "session": record_to_json(record) if record is not None else None,
        "reset": reset.to_json(),
    }
