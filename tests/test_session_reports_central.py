"""The reference central keeps each session report once, shows it to IT staff, and refuses reports
that are malformed or whose verdict contradicts their checks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from kiosk_client.adapters.central_http import HttpCentral
from kiosk_client.core.errors import CentralRejected
from kiosk_client.core.events import SessionRecord
from kiosk_client.core.reset_check import Check, failed, passed, verdict
from kiosk_client.core.session import EndReason
from kiosk_client.core.session_report import session_report

from . import test_central_http
from .conftest import Site

kiosk = test_central_http.kiosk  # the enrolled kiosk's HttpCentral (a fixture)


def a_report(ok: bool = True) -> dict[str, object]:
    record = SessionRecord(
        "apt_1", datetime(2026, 12, 6, 10, tzinfo=UTC), 1.0, 2.0, 3.0, 3.1, 100, 200, 90,
        EndReason.CLERK_HUNG_UP, 4.0, {"grants": 1},
    )  # fmt: skip
    results = [passed(c) for c in Check]
    if not ok:
        results[1] = failed(results[1].check, "1 file(s) left: Cookies")
    return session_report(record, verdict("session_end", "apt_1", 5.0, results, frozenset(Check)))


async def test_a_report_is_kept_once_and_listed_for_it_staff(site: Site, kiosk: HttpCentral) -> None:
    report = a_report(ok=False)
    await kiosk.post_session_report(report)
    await kiosk.post_session_report(report)  # the answer to the first try was lost: sent again
    [kept] = site.admin.session_reports()
    assert kept["kiosk_id"] == site.kiosk_id and kept["appointment_id"] == "apt_1"
    assert kept["passed"] is False and kept["trigger"] == "session_end"
    assert kept["session"]["end_reason"] == "clerk_hung_up"
    assert [c["passed"] for c in kept["reset"]["checks"]].count(False) == 1
    await kiosk.post_session_report(a_report())
    assert [r["passed"] for r in site.admin.session_reports()] == [False, True]


def broken(path: tuple[str | int, ...], value: object) -> dict[str, object]:
    report = copy.deepcopy(a_report())
    target: object = report
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return report


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (broken(("report_id",), "not-hex"), "report_id"),
        (broken(("reset", "passed"), False), "reset.passed"),  # contradicts its checks
        (broken(("reset", "checks"), []), "reset.checks"),
        (broken(("reset", "checks", 0, "check"), "DROP TABLE"), "reset.checks"),
        (broken(("reset", "trigger"), "whenever"), "reset.trigger"),
        (broken(("session",), "a string"), "session"),
        (broken(("reset", "checked_at"), True), "reset.checked_at"),
    ],
)
async def test_malformed_reports_are_refused(
    site: Site, kiosk: HttpCentral, report: dict[str, object], field: str
) -> None:
    with pytest.raises(CentralRejected) as refused:
        await kiosk.post_session_report(report)
    assert refused.value.code == "invalid_field" and field in str(refused.value)
    assert site.admin.session_reports() == []
