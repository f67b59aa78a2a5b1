"""Evaluation for the council that funds the kiosks: the clerk's rating of each session, and the usage
figures per site and service (`GET /api/v1/admin/usage`, CSV or JSON).

The figures are made from what the central records anyway: appointments, their calls, the kiosks'
session reports (timings, counts, the citizen's one-touch rating — kept apart from the report, with
the service and the day only) and the clerks' ratings. Nothing in the export names a citizen, a clerk
or an appointment.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from .errors import ApiError

FACES = (1, 2, 3, 4, 5)  # very bad … very good, as on the kiosk's ended screen and the console
CITIZEN_ANSWERS = ("skipped", "no_answer")
MAX_REMARK = 500  # characters: a remark, not a report
MAX_CALL_SECONDS = 24 * 3600
MAX_COUNT = 10_000
MAX_EVALUATION_URL = 300
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_field", message)


# --------------------------------------------------------------------------- the kiosk's session report


def check_usage_fields(session: dict[str, Any]) -> None:
    """The session record's usage fields, when present (a kiosk of an older version sends none)."""
    seconds = session.get("call_seconds")
    if seconds is not None and (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 0 <= seconds <= MAX_CALL_SECONDS
    ):
        raise _invalid(f"session.call_seconds: expected null or 0 to {MAX_CALL_SECONDS} seconds")
    for key in ("connections", "documents_sent"):
        value = session.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise _invalid(f"session.{key}: expected a count from 0 to {MAX_COUNT}")
    if not isinstance(session.get("control_used", False), bool):
        raise _invalid("session.control_used: expected true or false")
    rating = session.get("citizen_rating")
    if rating is not None and (isinstance(rating, bool) or rating not in (*FACES, *CITIZEN_ANSWERS)):
        raise _invalid('session.citizen_rating: expected null, 1 to 5, "skipped" or "no_answer"')


# --------------------------------------------------------------------------- « Je donne mon avis »


def checked_evaluation_url(value: Any) -> str:
    """The address kiosks show as a QR code after the rating: https, printable ASCII, short enough
    for a QR code a phone reads at arm's length (the kiosk checks the same: core/wire.py)."""
    if (
        not isinstance(value, str)
        or not value.startswith("https://")
        or not 8 < len(value) <= MAX_EVALUATION_URL
        or not (value.isascii() and value.isprintable())
        or " " in value
    ):
        raise _invalid(
            f"evaluation_url: expected an https:// address of at most {MAX_EVALUATION_URL} characters, or null"
        )
    return value


# --------------------------------------------------------------------------- the clerk's rating


def checked_clerk_rating(data: dict[str, Any]) -> tuple[int | None, str | None]:
    """`{"face": 1…5 or null (skipped), "remark": optional text}`, or a 400 naming what is wrong."""
    unknown = set(data) - {"face", "remark"}
    if unknown:
        raise _invalid(f"unknown keys: {', '.join(sorted(unknown))}")
    if "face" not in data:
        raise _invalid("face: expected 1 (very bad) to 5 (very good), or null to skip")
    face = data["face"]
    if face is not None and (isinstance(face, bool) or face not in FACES):
        raise _invalid("face: expected 1 (very bad) to 5 (very good), or null to skip")
    remark = data.get("remark")
    if remark is not None:
        if not isinstance(remark, str) or len(remark) > MAX_REMARK:
            raise _invalid(f"remark: expected text of at most {MAX_REMARK} characters")
        if any(not (c.isprintable() or c == "\n") for c in remark):
            raise _invalid("remark: control characters are not allowed")
        remark = remark.strip() or None
    return face, remark


# --------------------------------------------------------------------------- the figures


@dataclass
class Ratings:
    faces: dict[int, int] = field(default_factory=lambda: dict.fromkeys(FACES, 0))
    skipped: int = 0
    no_answer: int = 0

    def add(self, value: int | str | None, count: int = 1) -> None:
        if isinstance(value, int) and value in self.faces:
            self.faces[value] += count
        elif value == "no_answer":
            self.no_answer += count
        else:
            self.skipped += count

    def mean(self) -> float | None:
        given = sum(self.faces.values())
        return round(sum(f * n for f, n in self.faces.items()) / given, 2) if given else None

    def to_json(self, *, no_answer: bool) -> dict[str, Any]:
        result: dict[str, Any] = {
            "faces": {str(f): n for f, n in self.faces.items()},
            "skipped": self.skipped,
        }
        if no_answer:
            result["no_answer"] = self.no_answer
        result["mean"] = self.mean()
        return result


@dataclass
class Figures:
    appointments: int = 0
    cancelled: int = 0
    sessions: int = 0
    walk_ins: int = 0
    no_shows: int = 0
    durations: list[float] = field(default_factory=list)
    calls_dropped: int = 0
    calls_failed: int = 0
    reset_checks_failed: int = 0
    documents_sent: int = 0
    remote_control_sessions: int = 0
    citizen: Ratings = field(default_factory=Ratings)
    clerk: Ratings = field(default_factory=Ratings)
    remarks: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        total = round(sum(self.durations))
        return {
            "appointments": self.appointments,
            "cancelled": self.cancelled,
            "sessions": self.sessions,
            "walk_ins": self.walk_ins,
            "no_shows": self.no_shows,
            "duration_total_seconds": total,
            "duration_mean_seconds": round(total / len(self.durations)) if self.durations else None,
            "calls_dropped": self.calls_dropped,
            "calls_failed": self.calls_failed,
            "reset_checks_failed": self.reset_checks_failed,
            "documents_sent": self.documents_sent,
            "remote_control_sessions": self.remote_control_sessions,
            "citizen_ratings": self.citizen.to_json(no_answer=True),
            "clerk_ratings": self.clerk.to_json(no_answer=False),
            "clerk_remarks": self.remarks,
        }


@dataclass(frozen=True)
class Period:
    """Days in UTC, both included; None: no bound."""

    first: date | None = None
    last: date | None = None

    def holds(self, day: str) -> bool:
        return (self.first is None or day >= self.first.isoformat()) and (
            self.last is None or day <= self.last.isoformat()
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_figures(
    appointments: Iterable[Any],
    reports: Iterable[dict[str, Any]],
    citizen_ratings: Iterable[Any],
    period: Period,
    now: datetime,
) -> dict[tuple[str, str], Figures]:
    """The figures per (site, service) for appointments starting within `period`.

    `appointments`: rows with id, kiosk_id, service, start, end, walk_in, cancelled_at, site_name, answered (the
    central saw the clerk answer the call that is current), clerk_face, clerk_rated_at, clerk_remark.
    `citizen_ratings`: counts per site_name, service, day and rating.
    `reports`: the kiosks' session reports as listed (kiosk_id, trigger, passed, session). Per
    appointment the latest report of its own kiosk counts. A session is an appointment whose call was
    answered; a no-show, one that is over with none.
    """
    latest: dict[str, dict[str, Any]] = {}
    for report in reports:  # oldest first: the latest wins
        record = report.get("session")
        if report.get("trigger") == "session_end" and isinstance(record, dict):
            latest[f"{report['kiosk_id']}\0{record.get('appointment_id')}"] = report
    rows: dict[tuple[str, str], Figures] = defaultdict(Figures)
    for a in appointments:
        if not period.holds(a["start"][:10]):
            continue
        figures = rows[(a["site_name"], a["service"])]
        if a["cancelled_at"] is not None:  # cancelled in a booking tool (bookings.py): never a no-show
            figures.cancelled += 1
            continue
        figures.appointments += 1
        found: dict[str, Any] | None = latest.get(f"{a['kiosk_id']}\0{a['id']}")
        session: dict[str, Any] = found["session"] if found is not None else {}
        met = bool(a["answered"]) or _count(session.get("connections")) > 0
        met = met or session.get("answer_received_at") is not None  # a kiosk without the usage fields
        if met:
            figures.sessions += 1
            figures.walk_ins += bool(a["walk_in"])
            seconds = _number(session.get("call_seconds"))
            if seconds is not None:
                figures.durations.append(seconds)
            figures.calls_dropped += _count(session.get("connections")) > 1
            figures.documents_sent += _count(session.get("documents_sent"))
            figures.remote_control_sessions += session.get("control_used") is True
        elif datetime.fromisoformat(a["end"]) <= now:
            figures.no_shows += 1
        if session.get("end_reason") == "call_failed":
            figures.calls_failed += 1
        if found is not None and found.get("passed") is False:
            figures.reset_checks_failed += 1
        if a["clerk_rated_at"] is not None:
            figures.clerk.add(a["clerk_face"])
            if a["clerk_remark"]:
                figures.remarks.append({"day": a["start"][:10], "remark": a["clerk_remark"]})
    for r in citizen_ratings:
        if period.holds(r["day"]):
            value: int | str = int(r["rating"]) if r["rating"].isdigit() else r["rating"]
            rows[(r["site_name"], r["service"])].citizen.add(value, r["count"])
    return dict(sorted(rows.items()))


# --------------------------------------------------------------------------- the export

CSV_COLUMNS = (
    "site", "service", "appointments", "cancelled", "sessions", "walk_ins", "no_shows", "duration_total_seconds",
    "duration_mean_seconds", "calls_dropped", "calls_failed", "reset_checks_failed", "documents_sent",
    "remote_control_sessions",
    *(f"citizen_face_{f}" for f in FACES), "citizen_skipped", "citizen_no_answer", "citizen_mean",
    *(f"clerk_face_{f}" for f in FACES), "clerk_skipped", "clerk_mean",
)  # fmt: skip


def spreadsheet_safe(value: object) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def usage_csv(rows: dict[tuple[str, str], Figures]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for (site, service), figures in rows.items():
        f = figures.to_json()
        citizen, clerk = f["citizen_ratings"], f["clerk_ratings"]
        cells = [
            site, service, *(f[c] for c in CSV_COLUMNS[2:14]),
            *(citizen["faces"][str(n)] for n in FACES), citizen["skipped"], citizen["no_answer"], citizen["mean"],
            *(clerk["faces"][str(n)] for n in FACES), clerk["skipped"], clerk["mean"],
        ]  # fmt: skip
        writer.writerow([spreadsheet_safe(c) for c in cells])
    return out.getvalue()


def parse_period(query: Any) -> Period:
    def day(key: str) -> date | None:
        raw = query.get(key)
        if raw is None or raw == "":
            return None
        try:
            if len(raw) != 10:
                raise ValueError
            return date.fromisoformat(raw)
        except ValueError:
            raise ApiError(400, "invalid_query", f"{key}: expected a day as YYYY-MM-DD") from None

    period = Period(day("from"), day("to"))
    if period.first and period.last and period.first > period.last:
        raise ApiError(400, "invalid_query", "from: expected a day no later than to")
    return period


def usage_response(
    query: Any,
    appointments: Iterable[Any],
    report_rows: Iterable[Any],
    citizen_ratings: Iterable[Any],
) -> web.Response:
    fmt = query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(400, "invalid_query", "format: expected csv or json")
    period = parse_period(query)
    reports = [
        {
            "kiosk_id": r["kiosk_id"],
            "trigger": r["trigger"],
            "passed": bool(r["passed"]),
            "session": json.loads(r["document"]).get("session"),
        }
        for r in report_rows
    ]
    now = datetime.now(UTC)
    rows = usage_figures(appointments, reports, citizen_ratings, period, now)
    headers = {"Cache-Control": "no-store"}
    if fmt == "csv":
        name = f"usage-{period.first or 'start'}-{period.last or now.date()}.csv"
        return web.Response(
            text=usage_csv(rows),
            content_type="text/csv",
            charset="utf-8",
            headers={**headers, "Content-Disposition": f'attachment; filename="{name}"'},
        )
    return web.json_response(
        {
            "from": period.first.isoformat() if period.first else None,
            "to": period.last.isoformat() if period.last else None,
            "generated_at": now.isoformat(),
            "rows": [
                {"site": site, "service": service, **f.to_json()} for (site, service), f in rows.items()
            ],
        },
        headers=headers,
    )
