"""The kiosk's session reports (the session's record and the reset check between citizens): checked
as they arrive, kept by the reference central, listed for IT staff."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import ApiError
from .evaluation import check_usage_fields

MAX_REPORT_BYTES = 64 * 1024  # a record with its audit and eight checks: a few KB
CHECK_NAME = re.compile(r"[a-z_]{1,40}")
REPORT_ID = re.compile(r"[0-9a-f]{32}")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_field", message)


def checked_report(data: dict[str, Any]) -> dict[str, Any]:
    """The report as the central keeps it; a 400 names the first thing wrong. `reset.passed` must be
    the verdict of its checks: a report that says it passed with a failed check is refused."""
    report_id = data.get("report_id")
    if not isinstance(report_id, str) or not REPORT_ID.fullmatch(report_id):
        raise _invalid("report_id: expected 32 lowercase hex characters")
    session = data.get("session")
    if session is not None and (
        not isinstance(session, dict) or not isinstance(session.get("appointment_id"), str)
    ):
        raise _invalid("session: expected null or an object with an appointment_id")
    if session is not None:
        check_usage_fields(session)
    reset = data.get("reset")
    if not isinstance(reset, dict):
        raise _invalid("reset: expected an object")
    if reset.get("trigger") not in ("session_end", "start_up"):
        raise _invalid("reset.trigger: expected session_end or start_up")
    appointment_id = reset.get("appointment_id")
    if appointment_id is not None and (
        not isinstance(appointment_id, str) or not 0 < len(appointment_id) <= 128
    ):
        raise _invalid("reset.appointment_id: expected null or a string of at most 128 characters")
    if not isinstance(reset.get("checked_at"), int | float) or isinstance(reset.get("checked_at"), bool):
        raise _invalid("reset.checked_at: expected a number (seconds since the epoch)")
    checks = reset.get("checks")
    if not isinstance(checks, list) or not 0 < len(checks) <= 32:
        raise _invalid("reset.checks: expected 1 to 32 checks")
    for check in checks:
        if (
            not isinstance(check, dict)
            or not isinstance(check.get("check"), str)
            or not CHECK_NAME.fullmatch(check["check"])
            or not isinstance(check.get("passed"), bool)
            or not isinstance(check.get("detail", ""), str)
            or len(check.get("detail", "")) > 1000
        ):
            raise _invalid("reset.checks: each is {check: name, passed: boolean, detail: string}")
    verdict = all(check["passed"] for check in checks)
    if reset.get("passed") is not verdict:
        raise _invalid("reset.passed: expected the verdict of its checks")
    if len(json.dumps(data)) > MAX_REPORT_BYTES:
        raise ApiError(413, "too_large", f"a session report is at most {MAX_REPORT_BYTES} bytes")
    return {"report_id": report_id, "session": session, "reset": reset}


def report_json(row: Any) -> dict[str, Any]:
    document = json.loads(row["document"])
    return {
        "kiosk_id": row["kiosk_id"],
        "report_id": row["report_id"],
        "appointment_id": row["appointment_id"],
        "trigger": row["trigger"],
        "passed": bool(row["passed"]),
        "reported_at": row["reported_at"],
        "session": document["session"],
        "reset": document["reset"],
    }
