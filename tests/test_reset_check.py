"""The reset check's model: every check can fail, the verdict, and what the outbox may still hold."""

from __future__ import annotations

import pytest

from kiosk_client.core.reset_check import (
    ENGINE_CHECKS,
    SCREEN_CHECKS,
    Check,
    OutboxEntry,
    OutOfService,
    SettingsFound,
    clipboard_empty,
    devices_released,
    failed,
    leftovers,
    outbox_as_allowed,
    passed,
    settings_at_default,
    verdict,
)

NOW = 1_000_000.0


def test_every_check_is_on_one_side_or_both() -> None:
    assert set(Check) == ENGINE_CHECKS | SCREEN_CHECKS
    assert {Check.SETTINGS, Check.SCAN_TEMPORARIES} == ENGINE_CHECKS & SCREEN_CHECKS  # both sides answer


def test_the_verdict_passes_only_when_every_required_check_passed() -> None:
    results = [passed(c) for c in Check]
    report = verdict("session_end", "a1", NOW, results, frozenset(Check))
    assert report.passed and [r.check for r in report.results] == list(Check)
    assert report.to_json()["passed"] is True


def test_a_required_check_nobody_reported_fails() -> None:
    report = verdict("session_end", "a1", NOW, [passed(c) for c in ENGINE_CHECKS], frozenset(Check))
    assert not report.passed
    assert {r.check for r in report.failures()} == SCREEN_CHECKS - ENGINE_CHECKS
    assert all(r.detail == "not checked" for r in report.failures())


def test_a_check_reported_by_both_sides_fails_when_either_failed() -> None:
    for first, second in (
        (passed(Check.SETTINGS), failed(Check.SETTINGS, "volume 5")),
        (failed(Check.SETTINGS, "language en"), passed(Check.SETTINGS)),
    ):
        report = verdict("session_end", "a1", NOW, [first, second], frozenset({Check.SETTINGS}))
        assert not report.passed
    both = verdict(
        "session_end",
        "a1",
        NOW,
        [failed(Check.SETTINGS, "language en"), failed(Check.SETTINGS, "volume 5")],
        frozenset(),
    )
    assert both.results[0].detail == "language en; volume 5"


def test_leftovers_are_named_a_few_and_counted() -> None:
    assert leftovers(Check.WEB_STORAGE, [], "file(s)").passed
    result = leftovers(Check.WEB_STORAGE, [f"f{i}" for i in range(8)], "file(s)")
    assert not result.passed
    assert result.detail == "8 file(s) left: f0, f1, f2, f3, f4 and 3 more"


def test_devices_fail_with_a_call_or_an_open_device_file() -> None:
    assert devices_released(False, []).passed
    assert not devices_released(True, []).passed
    result = devices_released(False, ["/dev/video0"])
    assert not result.passed and "/dev/video0" in result.detail


@pytest.mark.parametrize(
    ("found", "wrong"),
    [
        (SettingsFound(language="en", default_language="fr"), "language en"),
        (SettingsFound(larger_text=True), "larger text"),
        (SettingsFound(zoom=1.5), "form zoom 1.5"),
        (SettingsFound(volume=5, default_volume=3), "volume 5"),
    ],
)
def test_each_setting_left_changed_fails(found: SettingsFound, wrong: str) -> None:
    result = settings_at_default(found)
    assert not result.passed and wrong in result.detail


def test_settings_at_their_defaults_pass() -> None:
    found = SettingsFound("fr", "fr", False, 1.0, 3, 3)
    assert settings_at_default(found).passed
    assert settings_at_default(SettingsFound()).passed  # nothing to judge on this side


def test_the_clipboard_must_hold_nothing() -> None:
    assert clipboard_empty([]).passed
    result = clipboard_empty(["text/plain"])
    assert not result.passed and "text/plain" in result.detail


def sealed(doc: str, appointment: str, expires: float = NOW + 3600) -> OutboxEntry:
    return OutboxEntry(f"{doc}.doc", True, doc, appointment, expires)


def test_the_outbox_may_hold_this_appointments_unconfirmed_and_earlier_ones_still_waiting() -> None:
    entries = [sealed("d1", "a2"), sealed("d0", "a1")]
    result = outbox_as_allowed(entries, "a2", frozenset({"d1"}), NOW)
    assert result.passed
    assert result.detail == "1 unconfirmed of this appointment, 1 of earlier appointments waiting"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (OutboxEntry("letter.pdf", False), "not a sealed document"),
        (OutboxEntry("d2.tmp", False), "not a sealed document"),
        (sealed("d1", "a2", expires=NOW - 1), "past its retention"),
        (sealed("d3", "a2"), "confirmed or refused, still kept"),  # not among the desk's unconfirmed
        (sealed("d4", "a1", expires=NOW - 1), "past its retention"),
    ],
)
def test_anything_else_in_the_outbox_fails(entry: OutboxEntry, why: str) -> None:
    result = outbox_as_allowed([entry], "a2", frozenset({"d1"}), NOW)
    assert not result.passed and why in result.detail


def test_at_start_up_every_sealed_unexpired_document_is_waiting_for_its_appointment() -> None:
    assert outbox_as_allowed([sealed("d1", "a2")], None, frozenset(), NOW).passed


def test_the_out_of_service_state_round_trips_and_refuses_nonsense() -> None:
    report = verdict("session_end", "a1", NOW, [failed(Check.CLIPBOARD, "x")], frozenset())
    state = OutOfService.after(report)
    assert state.failed_checks == ("clipboard",)
    assert OutOfService.from_json(state.to_json()) == state
    bad_states: list[object] = [None, [], {"since": "x", "appointment_id": None, "failed_checks": []}]
    for bad in bad_states:
        with pytest.raises(ValueError):
            OutOfService.from_json(bad)
